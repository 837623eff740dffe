"""Roles: admin, member and reader are seeded by the migration, immutable (the policy keys on
them; admin implies member, which implies reader: ``domain.auth.effective_roles``). Admins
may add others (what services make of them is their policy's business) and delete them.

    role = await create_role(deps, RoleCreate(name="auditor"))   # 409 for a taken name
    await list_roles(deps, name="member")     # [Role]
    await get_role(deps, role_id)             # or Keystone's 404
    await update_role(deps, role.id, RoleUpdate(description="reads the logs"))
    await delete_role(deps, role.id)          # its grants go; 403 while immutable

Keystone's ``immutable`` option guards a role: it is neither changed nor deleted until an
update that only clears the option.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common_rpc.errors import Conflict, Forbidden, Invalid

from ..db.models import Role, new_id
from ..wiring import Deps
from .common import get_or_404, not_none
from .schemas import RoleCreate, RoleUpdate


def duplicate_role(name: str) -> Conflict:
    return Conflict(
        f"Conflict occurred attempting to store role - Duplicate entry found with name {name}."
    )


async def create_role(deps: Deps, spec: RoleCreate) -> Role:
    if spec.domain_id is not None:
        raise Invalid("Domain-specific roles are not supported: leave domain_id out.")
    role = Role(
        id=new_id(), name=spec.name, description=spec.description, immutable=spec.options.immutable
    )
    try:
        async with deps.sessions.begin() as session:
            session.add(role)
    except IntegrityError:
        raise duplicate_role(spec.name) from None
    return role


async def list_roles(deps: Deps, *, name: str | None = None) -> list[Role]:
    query = select(Role).order_by(Role.name)
    if name is not None:
        query = query.where(Role.name == name)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_role(deps: Deps, role_id: str) -> Role:
    async with deps.sessions() as session:
        return await get_or_404(session, Role, role_id, "role")


async def update_role(deps: Deps, role_id: str, spec: RoleUpdate) -> Role:
    changes = spec.model_dump(include=spec.model_fields_set)
    not_none(changes, "name")
    options = changes.pop("options", None) or {}
    try:
        async with deps.sessions.begin() as session:
            role = await get_or_404(session, Role, role_id, "role")
            # Keystone: an immutable role takes only the update that clears the option.
            clears = options.get("immutable") is False and not changes
            if role.immutable and not clears:
                raise Forbidden(f"Unable to update immutable role {role_id}.")
            if "immutable" in options:
                role.immutable = options["immutable"]
            renamed = "name" in changes and changes["name"] != role.name
            for key, value in changes.items():
                setattr(role, key, value)
    except IntegrityError:
        raise duplicate_role(str(changes.get("name"))) from None
    if renamed:
        deps.tokens.forget()  # tokens carry role names
    return role


async def delete_role(deps: Deps, role_id: str) -> None:
    async with deps.sessions.begin() as session:
        role = await get_or_404(session, Role, role_id, "role")
        if role.immutable:
            raise Forbidden(f"Unable to delete immutable role {role_id}.")
        # Grants to users and groups (and application credentials' roles) go by CASCADE.
        await session.execute(delete(Role).where(Role.id == role_id))
    deps.tokens.forget()  # tokens lose it at once here
