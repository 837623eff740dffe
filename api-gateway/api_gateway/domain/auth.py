"""Who a token belongs to, as the gateway's policy and proxy see it.

The identity API issues tokens; ``TokenValidator`` is all the proxy, the policy and the
event stream need from it, so they do not depend on how tokens are stored.

    auth = await validator.validate(token)      # None: unknown, expired or revoked
    auth.context(request_id)                    # the RequestContext signed for services
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from common_rpc import RequestContext

ROLES = ("admin", "member", "reader")
# admin implies member implies reader.
IMPLIED = {
    "admin": {"admin", "member", "reader"},
    "member": {"member", "reader"},
    "reader": {"reader"},
}


def effective_roles(names: set[str] | frozenset[str]) -> frozenset[str]:
    out: set[str] = set()
    for name in names:
        out |= IMPLIED.get(name, {name})
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class AuthContext:
    token_id: str
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: frozenset[str]
    expires_at: datetime
    # Got with an application credential that may not manage application credentials.
    restricted: bool = False

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def context(self, request_id: str) -> RequestContext:
        return RequestContext(
            request_id=request_id,
            project_id=self.project_id,
            user_id=self.user_id,
            roles=self.roles,
        )


class TokenValidator(Protocol):
    async def validate(self, token: str) -> AuthContext | None:
        """The token's owner and scope, or None when it is unknown, expired or revoked."""
