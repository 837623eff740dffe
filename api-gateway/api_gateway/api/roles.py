"""Roles: ``GET /v3/roles[?name=]`` and ``GET /v3/roles/{id}`` (admin).

GET /v3/roles?name=member   -> {"roles": [{"id", "name": "member", "domain_id": null, ..}]}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..domain import roles
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access
from .views import Links, collection, role_view


def roles_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    admin = Access(deps.tokens).admin
    links = Links(deps.settings.public_url)

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

    return router
