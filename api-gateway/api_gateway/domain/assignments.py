"""Role grants on projects, to users and to groups, and their listing.

    await grant(deps, project_id, USER, user_id, role_id)        # granting twice is fine
    await grant(deps, project_id, GROUP, group_id, role_id)      # every member holds it there
    await check_grant(deps, project_id, USER, user_id, role_id)  # or Keystone's 404
    await revoke_grant(deps, project_id, GROUP, group_id, role_id)   # members' tokens lose it
    await list_assignments(deps, project_id=P, effective=True)   # [Assignment]

``effective`` lists what each user holds, as Keystone's role_assignments does: a group's
grant becomes one per member (``via_group_id``), and implied roles are added (admin brings
member and reader, ``prior_role_id``). Only project grants exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common_rpc.errors import Conflict, NotFound

from ..db.models import (
    Group,
    GroupMembership,
    GroupRoleAssignment,
    Project,
    Role,
    RoleAssignment,
    User,
)
from ..wiring import Deps
from .auth import effective_roles
from .common import get_or_404

Actor = Literal["user", "group"]
USER: Actor = "user"
GROUP: Actor = "group"
# Per kind: the grant table, the actor's table and the grant's column naming the actor.
_ROWS: dict[Actor, tuple[Any, Any, Any]] = {
    USER: (RoleAssignment, User, RoleAssignment.user_id),
    GROUP: (GroupRoleAssignment, Group, GroupRoleAssignment.group_id),
}


@dataclass(frozen=True)
class Assignment:
    """A role a user or a group holds on a project.

    ``prior_role_id``: the granted role that implies this one; ``via_group_id``: the group
    whose grant a user holds it by (both only in an effective listing).
    """

    project_id: str
    project_name: str
    role_id: str
    role_name: str
    user_id: str | None = None
    user_name: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    prior_role_id: str | None = None
    via_group_id: str | None = None


def assignment_not_found(project_id: str, actor_id: str, role_id: str) -> NotFound:
    """Keystone's RoleAssignmentNotFound."""
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: {actor_id}, "
        f"project, domain, or system: {project_id}."
    )


def _key(project_id: str, actor_id: str, role_id: str) -> tuple[str, str, str]:
    """A grant row's primary key: (user or group, project, role), the tables' column order."""
    return (actor_id, project_id, role_id)


async def list_grants(deps: Deps, project_id: str, kind: Actor, actor_id: str) -> list[Role]:
    """The roles granted to the user or group on the project (not the implied ones)."""
    table, actor, actor_column = _ROWS[kind]
    async with deps.sessions() as session:
        await get_or_404(session, Project, project_id, "project")
        await get_or_404(session, actor, actor_id, kind)
        roles = await session.scalars(
            select(Role)
            .join(table, table.role_id == Role.id)
            .where(table.project_id == project_id, actor_column == actor_id)
            .order_by(Role.name)
        )
        return list(roles.all())


async def grant(deps: Deps, project_id: str, kind: Actor, actor_id: str, role_id: str) -> None:
    table, actor, _ = _ROWS[kind]
    async with deps.sessions() as session:
        await get_or_404(session, Project, project_id, "project")
        await get_or_404(session, actor, actor_id, kind)
        await get_or_404(session, Role, role_id, "role")
    row = table(project_id=project_id, role_id=role_id, **{f"{kind}_id": actor_id})
    try:
        async with deps.sessions.begin() as session:
            session.add(row)
    except IntegrityError:
        # Already granted (the primary key), unless a target vanished meanwhile.
        async with deps.sessions() as session:
            if await session.get(table, _key(project_id, actor_id, role_id)) is None:
                raise Conflict("The grant could not be stored; try again.") from None


async def check_grant(
    deps: Deps, project_id: str, kind: Actor, actor_id: str, role_id: str
) -> None:
    table, _, _ = _ROWS[kind]
    async with deps.sessions() as session:
        if await session.get(table, _key(project_id, actor_id, role_id)) is None:
            raise assignment_not_found(project_id, actor_id, role_id)


async def revoke_grant(
    deps: Deps, project_id: str, kind: Actor, actor_id: str, role_id: str
) -> None:
    table, _, actor_column = _ROWS[kind]
    async with deps.sessions.begin() as session:
        result = await session.execute(
            delete(table).where(
                table.project_id == project_id,
                actor_column == actor_id,
                table.role_id == role_id,
            )
        )
    if not result.rowcount:
        raise assignment_not_found(project_id, actor_id, role_id)
    # The tokens that held it lose it at once here (other replicas: within the token cache).
    deps.tokens.forget(actor_id if kind == USER else None)


async def list_assignments(
    deps: Deps,
    *,
    project_id: str | None = None,
    user_id: str | None = None,
    group_id: str | None = None,
    role_id: str | None = None,
    effective: bool = False,
) -> list[Assignment]:
    """Grants ordered by project, user or group, and role names; each one once.

    ``user_id`` with ``effective`` includes what the user holds through its groups.
    """
    direct: list[Assignment] = []
    user_rows = (
        select(RoleAssignment, Role.name, User.name, Project.name)
        .join(Role, Role.id == RoleAssignment.role_id)
        .join(User, User.id == RoleAssignment.user_id)
        .join(Project, Project.id == RoleAssignment.project_id)
    )
    group_rows = (
        select(GroupRoleAssignment, Role.name, Group.name, Project.name)
        .join(Role, Role.id == GroupRoleAssignment.role_id)
        .join(Group, Group.id == GroupRoleAssignment.group_id)
        .join(Project, Project.id == GroupRoleAssignment.project_id)
    )
    if project_id is not None:
        user_rows = user_rows.where(RoleAssignment.project_id == project_id)
        group_rows = group_rows.where(GroupRoleAssignment.project_id == project_id)
    if user_id is not None:
        user_rows = user_rows.where(RoleAssignment.user_id == user_id)
    if group_id is not None:
        group_rows = group_rows.where(GroupRoleAssignment.group_id == group_id)
    async with deps.sessions() as session:
        if group_id is None:
            for row, role_name, user_name, project_name in (await session.execute(user_rows)).all():
                direct.append(
                    Assignment(
                        row.project_id,
                        project_name,
                        row.role_id,
                        role_name,
                        user_id=row.user_id,
                        user_name=user_name,
                    )
                )
        groups: list[Assignment] = []
        if user_id is None or effective:
            for row, role_name, group_name, project_name in (
                await session.execute(group_rows)
            ).all():
                groups.append(
                    Assignment(
                        row.project_id,
                        project_name,
                        row.role_id,
                        role_name,
                        group_id=row.group_id,
                        group_name=group_name,
                    )
                )
        members: dict[str, list[tuple[str, str]]] = {}
        if effective and groups:
            query = (
                select(GroupMembership.group_id, User.id, User.name)
                .join(User, User.id == GroupMembership.user_id)
                .where(GroupMembership.group_id.in_({g.group_id for g in groups}))
            )
            if user_id is not None:
                query = query.where(User.id == user_id)
            for gid, uid, uname in (await session.execute(query)).all():
                members.setdefault(gid, []).append((uid, uname))
        role_ids = {
            name: rid for name, rid in (await session.execute(select(Role.name, Role.id))).all()
        }
    if effective:
        # A group's grant is held by each member; the group itself holds nothing.
        direct += [
            replace(g, user_id=uid, user_name=uname, group_id=None, group_name=None,
                    via_group_id=g.group_id)
            for g in groups
            for uid, uname in members.get(str(g.group_id), [])
        ]  # fmt: skip
        direct += [
            replace(item, role_id=role_ids[name], role_name=name, prior_role_id=item.role_id)
            for item in list(direct)
            for name in sorted(effective_roles({item.role_name}) - {item.role_name})
            if name in role_ids
        ]
    else:
        direct += groups
    direct.sort(
        key=lambda a: (
            a.project_name,
            a.user_name or "",
            a.group_name or "",
            a.prior_role_id is not None,  # granted before implied
            a.via_group_id is not None,  # own grants before a group's
            a.role_name,
        )
    )
    items: list[Assignment] = []
    seen: set[tuple[str, str | None, str | None, str]] = set()
    for item in direct:
        key = (item.project_id, item.user_id, item.group_id, item.role_id)
        if key in seen or (role_id is not None and item.role_id != role_id):
            continue
        seen.add(key)
        items.append(item)
    return items
