"""Groups: ``/v3/groups`` and their members (admin; a user may list its own groups).

POST   /v3/groups  {"group": {"name": "ops", "description": ".."}}   -> 201, 409 taken
GET    /v3/groups?name=ops          GET|PATCH|DELETE /v3/groups/{id}
GET    /v3/groups/{id}/users        PUT|HEAD|DELETE /v3/groups/{id}/users/{user_id} -> 204
GET    /v3/users/{id}/groups
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..domain import groups
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access, authorize
from .schemas import GroupCreateBody, GroupUpdateBody
from .views import Links, collection, group_view, user_view

MEMBER = "/v3/groups/{group_id}/users/{user_id}"


def groups_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    access = Access(deps.tokens)
    admin, caller = access.admin, access.caller
    links = Links(deps.settings.public_url)

    @router.post("/v3/groups", status_code=201)
    async def create_group(
        body: GroupCreateBody, _auth: AuthContext = Depends(admin("identity:create_group"))
    ) -> dict[str, Any]:
        return {"group": group_view(await groups.create_group(deps, body.group), links)}

    @router.get("/v3/groups")
    async def list_groups(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_groups")),
        name: str | None = None,
        domain_id: str | None = None,
    ) -> dict[str, Any]:
        found = await groups.list_groups(deps, name=name, domain_id=domain_id)
        return collection(
            "groups", [group_view(g, links) for g in found], links.collection(request)
        )

    @router.get("/v3/groups/{group_id}")
    async def show_group(
        group_id: str, _auth: AuthContext = Depends(admin("identity:get_group"))
    ) -> dict[str, Any]:
        return {"group": group_view(await groups.get_group(deps, group_id), links)}

    @router.patch("/v3/groups/{group_id}")
    async def update_group(
        group_id: str,
        body: GroupUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_group")),
    ) -> dict[str, Any]:
        return {"group": group_view(await groups.update_group(deps, group_id, body.group), links)}

    @router.delete("/v3/groups/{group_id}", status_code=204)
    async def delete_group(
        group_id: str, _auth: AuthContext = Depends(admin("identity:delete_group"))
    ) -> Response:
        await groups.delete_group(deps, group_id)
        return Response(status_code=204)

    @router.get("/v3/groups/{group_id}/users")
    async def list_group_users(
        request: Request,
        group_id: str,
        _auth: AuthContext = Depends(admin("identity:list_users_in_group")),
    ) -> dict[str, Any]:
        found = await groups.group_users(deps, group_id)
        return collection("users", [user_view(u, links) for u in found], links.collection(request))

    @router.put(MEMBER, status_code=204)
    async def add_user(
        group_id: str,
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:add_user_to_group")),
    ) -> Response:
        await groups.add_member(deps, group_id, user_id)
        return Response(status_code=204)

    @router.head(MEMBER, status_code=204)
    async def check_user(
        group_id: str,
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:check_user_in_group")),
    ) -> Response:
        await groups.check_member(deps, group_id, user_id)
        return Response(status_code=204)

    @router.delete(MEMBER, status_code=204)
    async def remove_user(
        group_id: str,
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:remove_user_from_group")),
    ) -> Response:
        await groups.remove_member(deps, group_id, user_id)
        return Response(status_code=204)

    @router.get("/v3/users/{user_id}/groups")
    async def list_user_groups(
        request: Request, user_id: str, auth: AuthContext = Depends(caller)
    ) -> dict[str, Any]:
        authorize("identity:list_groups_for_user", auth, owner=auth.user_id == user_id)
        found = await groups.user_groups(deps, user_id)
        return collection(
            "groups", [group_view(g, links) for g in found], links.collection(request)
        )

    return router
