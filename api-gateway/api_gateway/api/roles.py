"""Roles: ``/v3/roles`` (admin).

POST   /v3/roles   {"role": {"name": "auditor", "description": ".."}}   -> 201, 409 taken
GET    /v3/roles?name=member -> {"roles": [{"id", "name": "member", "domain_id": null, ..}]}
GET    /v3/roles/{id}        PATCH /v3/roles/{id} {"role": {...}}
DELETE /v3/roles/{id}        -> 204; its grants go; 403 for an immutable role
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..domain import roles
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access
from .schemas import RoleCreateBody, RoleUpdateBody
from .views import Links, collection, role_view


def roles_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    admin = Access(deps.tokens).admin
    links = Links(deps.settings.public_url)

    @router.post("/v3/roles", status_code=201)
    async def create_role(
        body: RoleCreateBody, _auth: AuthContext = Depends(admin("identity:create_role"))
    ) -> dict[str, Any]:
        return {"role": role_view(await roles.create_role(deps, body.role), links)}

    @router.get("/v3/roles")
    async def list_roles(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_roles")),
        name: str | None = None,
    ) -> dict[str, Any]:
        views = [role_view(r, links) for r in await roles.list_roles(deps, name=name)]
        return collection("roles", views, links.collection(request))

    @router.get("/v3/roles/{role_id}")
    async def show_role(
        role_id: str, _auth: AuthContext = Depends(admin("identity:get_role"))
    ) -> dict[str, Any]:
        return {"role": role_view(await roles.get_role(deps, role_id), links)}

    @router.patch("/v3/roles/{role_id}")
    async def update_role(
        role_id: str,
        body: RoleUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_role")),
    ) -> dict[str, Any]:
        return {"role": role_view(await roles.update_role(deps, role_id, body.role), links)}

    @router.delete("/v3/roles/{role_id}", status_code=204)
    async def delete_role(
        role_id: str, _auth: AuthContext = Depends(admin("identity:delete_role"))
    ) -> Response:
        await roles.delete_role(deps, role_id)
        return Response(status_code=204)

    return router
