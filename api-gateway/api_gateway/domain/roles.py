"""Roles: admin, member and reader, made by the schema migration (admin implies member,
which implies reader: ``domain.auth.effective_roles``). Not created or deleted over the API.

    await list_roles(deps, name="member")     # [Role]
    await get_role(deps, role_id)             # or Keystone's 404
"""

from __future__ import annotations

from sqlalchemy import select

from ..db.models import Role
from ..wiring import Deps
from .common import get_or_404


async def list_roles(deps: Deps, *, name: str | None = None) -> list[Role]:
    query = select(Role).order_by(Role.name)
    if name is not None:
        query = query.where(Role.name == name)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_role(deps: Deps, role_id: str) -> Role:
    async with deps.sessions() as session:
        return await get_or_404(session, Role, role_id, "role")
