"""Role grants on projects, to users and to groups, and their listing (admin).

    PUT    /v3/projects/{p}/users/{u}/roles/{r}    -> 204 (granting twice is fine)
    PUT    /v3/projects/{p}/groups/{g}/roles/{r}   -> 204: every member of g holds r on p
    HEAD   .../roles/{r}   -> 204, or 404 when not granted;   DELETE .../roles/{r} -> 204 or 404
    GET    /v3/projects/{p}/users/{u}/roles        GET /v3/projects/{p}/groups/{g}/roles
    GET    /v3/role_assignments?scope.project.id=P&user.id=U&group.id=G&role.id=R
           &include_names&effective

Only project grants exist: a domain or system filter matches nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from common_rpc.errors import Invalid

from ..domain import assignments
from ..domain.assignments import GROUP, USER, Actor
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access, query_flag
from .views import Links, assignment_view, collection, role_view

# Filters that name something this service never grants on.
NEVER_MATCHING = ("scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to")


def assignments_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    admin = Access(deps.tokens).admin
    links = Links(deps.settings.public_url)

    def grant_routes(kind: Actor) -> None:
        path = f"/v3/projects/{{project_id}}/{kind}s/{{actor_id}}/roles"

        @router.get(path, name=f"list_{kind}_grants")
        async def list_grants(
            request: Request,
            project_id: str,
            actor_id: str,
            _auth: AuthContext = Depends(admin("identity:list_grants")),
        ) -> dict[str, Any]:
            roles = await assignments.list_grants(deps, project_id, kind, actor_id)
            views = [role_view(r, links) for r in roles]
            return collection("roles", views, links.collection(request))

        @router.put(path + "/{role_id}", status_code=204, name=f"{kind}_grant")
        async def grant(
            project_id: str,
            actor_id: str,
            role_id: str,
            _auth: AuthContext = Depends(admin("identity:create_grant")),
        ) -> Response:
            await assignments.grant(deps, project_id, kind, actor_id, role_id)
            return Response(status_code=204)

        @router.head(path + "/{role_id}", status_code=204, name=f"check_{kind}_grant")
        async def check_grant(
            project_id: str,
            actor_id: str,
            role_id: str,
            _auth: AuthContext = Depends(admin("identity:check_grant")),
        ) -> Response:
            await assignments.check_grant(deps, project_id, kind, actor_id, role_id)
            return Response(status_code=204)

        @router.delete(path + "/{role_id}", status_code=204, name=f"revoke_{kind}_grant")
        async def revoke_grant(
            project_id: str,
            actor_id: str,
            role_id: str,
            _auth: AuthContext = Depends(admin("identity:revoke_grant")),
        ) -> Response:
            await assignments.revoke_grant(deps, project_id, kind, actor_id, role_id)
            return Response(status_code=204)

    grant_routes(USER)
    grant_routes(GROUP)

    @router.get("/v3/role_assignments")
    async def list_assignments(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_role_assignments")),
    ) -> dict[str, Any]:
        params = request.query_params
        effective = bool(query_flag(params.get("effective")))
        if effective and "group.id" in params:
            raise Invalid(
                "Combining effective and group filter will always result in an empty list."
            )
        items: list[dict[str, Any]] = []
        if not any(name in params for name in NEVER_MATCHING):
            found = await assignments.list_assignments(
                deps,
                project_id=params.get("scope.project.id"),
                user_id=params.get("user.id"),
                group_id=params.get("group.id"),
                role_id=params.get("role.id"),
                effective=effective,
            )
            names = bool(query_flag(params.get("include_names")))
            items = [assignment_view(item, links, names=names) for item in found]
        return {"role_assignments": items, "links": links.collection(request)}

    return router
