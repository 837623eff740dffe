"""Roles: ``GET /v3/roles[?name=]`` and ``GET /v3/roles/{id}`` (admin).

    GET /v3/roles?name=member   -> {"roles": [{"id", "name": "member", "domain_id": null, ..}]}

The three roles (admin, member, reader) are created by the schema migration; admin
implies member, which implies reader. Roles are not created or deleted over the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from ..db.models import Role
from ..domain.auth import AuthContext
from .deps import IdentityDeps
from .lookup import get_or_404
from .views import collection, role_view


def roles_router(deps: IdentityDeps) -> APIRouter:
    router = APIRouter()
    admin = deps.access.admin

    @router.get("/v3/roles")
    async def list_roles(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_roles")),
        name: str | None = None,
    ) -> dict[str, Any]:
        query = select(Role).order_by(Role.name)
        if name is not None:
            query = query.where(Role.name == name)
        async with deps.sessions() as session:
            roles = (await session.scalars(query)).all()
        views = [role_view(r, deps.links) for r in roles]
        return collection("roles", views, deps.links.collection(request))

    @router.get("/v3/roles/{role_id}")
    async def show_role(
        role_id: str, _auth: AuthContext = Depends(admin("identity:get_role"))
    ) -> dict[str, Any]:
        async with deps.sessions() as session:
            role = await get_or_404(session, Role, role_id, "role")
        return {"role": role_view(role, deps.links)}

    return router
