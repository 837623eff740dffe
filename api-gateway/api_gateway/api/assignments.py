"""Role grants on projects and their listing (admin).

    PUT    /v3/projects/{p}/users/{u}/roles/{r}   -> 204 (granting twice is fine)
    HEAD   /v3/projects/{p}/users/{u}/roles/{r}   -> 204, or 404 when not granted
    DELETE /v3/projects/{p}/users/{u}/roles/{r}   -> 204, or 404 when not granted
    GET    /v3/projects/{p}/users/{u}/roles       -> {"roles": [..]} granted there
    GET    /v3/role_assignments?scope.project.id=P&user.id=U&role.id=R&include_names&effective

Only project grants to users exist: a group or domain filter matches nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..domain import assignments
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access, query_flag
from .views import Links, assignment_view, collection, role_view

GRANT = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
# Filters that name something this service never grants on or to.
NEVER_MATCHING = ("group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to")


def assignments_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    admin = Access(deps.tokens).admin
    links = Links(deps.settings.public_url)

    @router.get(GRANT.rsplit("/", 1)[0])
    async def list_grants(
        request: Request,
        project_id: str,
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:list_grants")),
    ) -> dict[str, Any]:
        roles = await assignments.list_grants(deps, project_id, user_id)
        views = [role_view(r, links) for r in roles]
        return collection("roles", views, links.collection(request))

    @router.put(GRANT, status_code=204)
    async def grant(
        project_id: str,
        user_id: str,
        role_id: str,
        _auth: AuthContext = Depends(admin("identity:create_grant")),
    ) -> Response:
        await assignments.grant(deps, project_id, user_id, role_id)
        return Response(status_code=204)

    @router.head(GRANT, status_code=204)
    async def check_grant(
        project_id: str,
        user_id: str,
        role_id: str,
        _auth: AuthContext = Depends(admin("identity:check_grant")),
    ) -> Response:
        await assignments.check_grant(deps, project_id, user_id, role_id)
        return Response(status_code=204)

    @router.delete(GRANT, status_code=204)
    async def revoke_grant(
        project_id: str,
        user_id: str,
        role_id: str,
        _auth: AuthContext = Depends(admin("identity:revoke_grant")),
    ) -> Response:
        await assignments.revoke_grant(deps, project_id, user_id, role_id)
        return Response(status_code=204)

    @router.get("/v3/role_assignments")
    async def list_assignments(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_role_assignments")),
    ) -> dict[str, Any]:
        params = request.query_params
        items: list[dict[str, Any]] = []
        if not any(name in params for name in NEVER_MATCHING):
            found = await assignments.list_assignments(
                deps,
                project_id=params.get("scope.project.id"),
                user_id=params.get("user.id"),
                role_id=params.get("role.id"),
                effective=bool(query_flag(params.get("effective"))),
            )
            names = bool(query_flag(params.get("include_names")))
            items = [assignment_view(item, links, names=names) for item in found]
        return {"role_assignments": items, "links": links.collection(request)}

    return router
