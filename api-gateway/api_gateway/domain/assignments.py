"""Role grants to users on projects, and their listing.

    await grant(deps, project_id, user_id, role_id)          # granting twice is fine
    await check_grant(deps, project_id, user_id, role_id)    # or Keystone's 404
    await revoke_grant(deps, project_id, user_id, role_id)   # the user's tokens lose it here
    await list_assignments(deps, project_id=P, effective=True)   # [Assignment]

``effective`` adds the implied roles (admin brings member and reader), as Keystone's role
inference does. Only project grants to users exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError

from common_rpc.errors import Conflict, NotFound

from ..db.models import Project, Role, RoleAssignment, User
from ..wiring import Deps
from .auth import effective_roles
from .common import get_or_404


@dataclass(frozen=True)
class Assignment:
    """A role a user holds on a project; ``prior_role_id`` is the granted role that implies it."""

    project_id: str
    project_name: str
    user_id: str
    user_name: str
    role_id: str
    role_name: str
    prior_role_id: str | None = None


def assignment_not_found(project_id: str, user_id: str, role_id: str) -> NotFound:
    """Keystone's RoleAssignmentNotFound."""
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: {user_id}, "
        f"project, domain, or system: {project_id}."
    )


def _grant_row(project_id: str, user_id: str, role_id: str) -> Select[tuple[RoleAssignment]]:
    return select(RoleAssignment).where(
        RoleAssignment.project_id == project_id,
        RoleAssignment.user_id == user_id,
        RoleAssignment.role_id == role_id,
    )


async def list_grants(deps: Deps, project_id: str, user_id: str) -> list[Role]:
    """The roles granted to the user on the project (not the implied ones)."""
    async with deps.sessions() as session:
        await get_or_404(session, Project, project_id, "project")
        await get_or_404(session, User, user_id, "user")
        roles = await session.scalars(
            select(Role)
            .join(RoleAssignment, RoleAssignment.role_id == Role.id)
            .where(RoleAssignment.project_id == project_id, RoleAssignment.user_id == user_id)
            .order_by(Role.name)
        )
        return list(roles.all())


async def grant(deps: Deps, project_id: str, user_id: str, role_id: str) -> None:
    async with deps.sessions() as session:
        await get_or_404(session, Project, project_id, "project")
        await get_or_404(session, User, user_id, "user")
        await get_or_404(session, Role, role_id, "role")
    try:
        async with deps.sessions.begin() as session:
            session.add(RoleAssignment(project_id=project_id, user_id=user_id, role_id=role_id))
    except IntegrityError:
        # Already granted (the primary key), unless a target vanished meanwhile.
        async with deps.sessions() as session:
            if await session.scalar(_grant_row(project_id, user_id, role_id)) is None:
                raise Conflict("The grant could not be stored; try again.") from None


async def check_grant(deps: Deps, project_id: str, user_id: str, role_id: str) -> None:
    async with deps.sessions() as session:
        if await session.scalar(_grant_row(project_id, user_id, role_id)) is None:
            raise assignment_not_found(project_id, user_id, role_id)


async def revoke_grant(deps: Deps, project_id: str, user_id: str, role_id: str) -> None:
    async with deps.sessions.begin() as session:
        result = await session.execute(
            delete(RoleAssignment).where(
                RoleAssignment.project_id == project_id,
                RoleAssignment.user_id == user_id,
                RoleAssignment.role_id == role_id,
            )
        )
    if not result.rowcount:
        raise assignment_not_found(project_id, user_id, role_id)
    deps.tokens.forget(user_id)  # the user's tokens lose the role at once here


async def list_assignments(
    deps: Deps,
    *,
    project_id: str | None = None,
    user_id: str | None = None,
    role_id: str | None = None,
    effective: bool = False,
) -> list[Assignment]:
    """Grants ordered by project, user and role names; each (project, user, role) once."""
    query = (
        select(RoleAssignment, Role.name, User.name, Project.name)
        .join(Role, Role.id == RoleAssignment.role_id)
        .join(User, User.id == RoleAssignment.user_id)
        .join(Project, Project.id == RoleAssignment.project_id)
        .order_by(Project.name, User.name, Role.name)
    )
    if project_id is not None:
        query = query.where(RoleAssignment.project_id == project_id)
    if user_id is not None:
        query = query.where(RoleAssignment.user_id == user_id)
    async with deps.sessions() as session:
        rows = (await session.execute(query)).all()
        role_ids = {
            name: rid for name, rid in (await session.execute(select(Role.name, Role.id))).all()
        }
    # Direct grants first, so a role both granted and implied is listed as granted.
    found = [
        Assignment(
            grant.project_id, project_name, grant.user_id, user_name, grant.role_id, role_name
        )
        for grant, role_name, user_name, project_name in rows
    ]
    if effective:
        found += [
            Assignment(
                grant.project_id,
                project_name,
                grant.user_id,
                user_name,
                role_ids[name],
                name,
                prior_role_id=grant.role_id,
            )
            for grant, role_name, user_name, project_name in rows
            for name in sorted(effective_roles({role_name}) - {role_name})
            if name in role_ids
        ]
    items: list[Assignment] = []
    seen: set[tuple[str, str, str]] = set()
    for item in found:
        key = (item.project_id, item.user_id, item.role_id)
        if key in seen or (role_id is not None and item.role_id != role_id):
            continue
        seen.add(key)
        items.append(item)
    return items
