"""``/v3/auth``: tokens, the caller's projects and catalog.

    POST   /v3/auth/tokens   {"auth": ...}              -> 201, X-Subject-Token, {"token": ..}
    GET    /v3/auth/tokens   X-Auth-Token, X-Subject-Token [?nocatalog] -> 200; 404 if not valid
    HEAD   /v3/auth/tokens   -> 200        DELETE /v3/auth/tokens -> 204 (revoked)
    GET    /v3/auth/projects -> the projects the caller holds a role on
    GET    /v3/auth/catalog  -> the catalog of the caller's project-scoped token

Checking or revoking a token is for admins and for the token's own user.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from common_rpc.errors import Forbidden, NotFound

from ..domain.auth import AuthContext
from ..domain.authn import authenticate
from ..domain.catalog import build_catalog
from ..domain.projects import usable_projects
from ..domain.tokens import TokenInfo
from ..wiring import Deps
from .common import Access, authorize
from .schemas import AuthRequest
from .views import Links, catalog_view, collection, project_view, token_body

SUBJECT_HEADER = "X-Subject-Token"


def auth_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    caller = Access(deps.tokens).caller
    links = Links(deps.settings.public_url)

    async def respond(info: TokenInfo, secret: str, status: int, nocatalog: str | None) -> Response:
        catalog = None
        if nocatalog is None and info.project_id is not None:
            catalog = await build_catalog(deps.sessions, info.project_id, info.user_id)
        return JSONResponse(
            token_body(info, catalog), status_code=status, headers={SUBJECT_HEADER: secret}
        )

    async def subject(auth: AuthContext, token: str | None, action: str) -> tuple[TokenInfo, str]:
        """The token named by X-Subject-Token, if the caller may see it."""
        if not token:
            raise NotFound("No token in the request")
        info = await deps.tokens.describe(token)
        if info is None:
            raise NotFound(f"Could not find token: {token}.")
        authorize(action, auth, owner=info.user_id == auth.user_id)
        return info, token

    @router.post("/v3/auth/tokens", status_code=201)
    async def issue_token(body: AuthRequest, nocatalog: str | None = None) -> Response:
        secret, info = await authenticate(deps, body.auth)
        return await respond(info, secret, 201, nocatalog)

    @router.get("/v3/auth/tokens")
    async def validate_token(
        auth: AuthContext = Depends(caller),
        x_subject_token: str | None = Header(default=None),
        nocatalog: str | None = None,
    ) -> Response:
        info, token = await subject(auth, x_subject_token, "identity:validate_token")
        return await respond(info, token, 200, nocatalog)

    @router.head("/v3/auth/tokens")
    async def check_token(
        auth: AuthContext = Depends(caller),
        x_subject_token: str | None = Header(default=None),
    ) -> Response:
        _, token = await subject(auth, x_subject_token, "identity:check_token")
        return Response(status_code=200, headers={SUBJECT_HEADER: token})

    @router.delete("/v3/auth/tokens", status_code=204)
    async def revoke_token(
        auth: AuthContext = Depends(caller),
        x_subject_token: str | None = Header(default=None),
    ) -> Response:
        _, token = await subject(auth, x_subject_token, "identity:revoke_token")
        await deps.tokens.revoke(token)
        return Response(status_code=204)

    @router.get("/v3/auth/projects")
    async def my_projects(request: Request, auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        views = [project_view(p, links) for p in await usable_projects(deps, auth.user_id)]
        return collection("projects", views, links.collection(request))

    @router.get("/v3/auth/catalog")
    async def my_catalog(request: Request, auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        if auth.project_id is None:
            raise Forbidden("A project-scoped token is required to produce a service catalog.")
        catalog = catalog_view(await build_catalog(deps.sessions, auth.project_id, auth.user_id))
        return {"catalog": catalog, "links": links.collection(request)}

    return router
