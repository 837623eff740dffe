"""What the identity routers share: who may call (token, admin) and query flags.

    access = Access(deps.tokens)
    @router.get("/v3/projects")
    async def list_projects(auth: AuthContext = Depends(access.admin("identity:list_projects"))):
        ...
    authorize("identity:get_user", auth, owner=auth.user_id == user_id)   # self-service
    query_flag("true")          # True; "0" and "false" are False; absent is None

No token, or one that is unknown, expired or revoked: 401. A valid token without the
admin role (on its project) for an admin-only call: 403. Both in Keystone's error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Header

from common_rpc.errors import Forbidden, Unauthorized

from ..domain.auth import AuthContext, TokenValidator

AUTH_REQUIRED = "The request you have made requires authentication."


def authorize(action: str, auth: AuthContext, *, owner: bool = False) -> None:
    """Admins may do anything; others only what concerns themselves (``owner``)."""
    if not (auth.is_admin or owner):
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.")


class Access:
    """FastAPI dependencies that turn ``X-Auth-Token`` into an ``AuthContext``."""

    def __init__(self, tokens: TokenValidator) -> None:
        self.tokens = tokens

    async def caller(self, x_auth_token: str | None = Header(default=None)) -> AuthContext:
        if not x_auth_token:
            raise Unauthorized(AUTH_REQUIRED)
        auth = await self.tokens.validate(x_auth_token)
        if auth is None:
            raise Unauthorized(AUTH_REQUIRED)
        return auth

    def admin(self, action: str) -> Callable[..., Awaitable[AuthContext]]:
        """A dependency for an admin-only call named ``action`` in the 403 message."""

        async def require_admin(auth: AuthContext = Depends(self.caller)) -> AuthContext:
            authorize(action, auth)
            return auth

        return require_admin


def query_flag(value: str | None) -> bool | None:
    """A boolean query parameter; present without a value means true, as in Keystone."""
    if value is None:
        return None
    return value.strip().lower() not in ("0", "false", "no", "off")
