"""Groups of users in the one domain: a role granted to a group on a project is held there by
every member (``tokens.project_roles``), so access is managed once per team.

    group = await create_group(deps, GroupCreate(name="ops"))     # 409 for a taken name
    await add_member(deps, group.id, user_id)                     # adding twice is fine
    await check_member(deps, group.id, user_id)                   # or Keystone's 404
    await group_users(deps, group.id); await user_groups(deps, user_id)
    await remove_member(deps, group.id, user_id)   # its tokens lose the group's roles
    await delete_group(deps, group.id)             # memberships and grants go with it

A change that can take roles away drops the cached validations it concerns, so this
process sees it at once (other replicas within the token cache's time).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common_rpc.chassis.db import try_insert
from common_rpc.errors import Conflict, NotFound

from ..db.models import Group, GroupMembership, User, new_id
from ..wiring import Deps
from .common import get_or_404, not_none, require_default_domain
from .schemas import GroupCreate, GroupUpdate


def duplicate_group(name: str) -> Conflict:
    return Conflict(
        "Conflict occurred attempting to store group - "
        f"Duplicate entry found with name {name} at domain ID default."
    )


async def create_group(deps: Deps, spec: GroupCreate) -> Group:
    group = Group(
        id=new_id(),
        name=spec.name,
        domain_id=require_default_domain(spec.domain_id),
        description=spec.description,
    )
    try:
        async with deps.sessions.begin() as session:
            session.add(group)
    except IntegrityError:
        raise duplicate_group(spec.name) from None
    return group


async def list_groups(
    deps: Deps, *, name: str | None = None, domain_id: str | None = None
) -> list[Group]:
    query = select(Group).order_by(Group.name)
    if name is not None:
        query = query.where(Group.name == name)
    if domain_id is not None:
        query = query.where(Group.domain_id == domain_id)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_group(deps: Deps, group_id: str) -> Group:
    async with deps.sessions() as session:
        return await get_or_404(session, Group, group_id, "group")


async def update_group(deps: Deps, group_id: str, spec: GroupUpdate) -> Group:
    changes = spec.model_dump(include=spec.model_fields_set)
    not_none(changes, "name")
    try:
        async with deps.sessions.begin() as session:
            group = await get_or_404(session, Group, group_id, "group")
            for key, value in changes.items():
                setattr(group, key, value)
    except IntegrityError:
        raise duplicate_group(str(changes.get("name"))) from None
    return group


async def delete_group(deps: Deps, group_id: str) -> None:
    async with deps.sessions.begin() as session:
        # Memberships and the group's grants go by ON DELETE CASCADE.
        result = await session.execute(delete(Group).where(Group.id == group_id))
    if not result.rowcount:
        raise NotFound(f"Could not find group: {group_id}.")
    deps.tokens.forget()  # its members' tokens lose its roles at once here


async def group_users(deps: Deps, group_id: str) -> list[User]:
    async with deps.sessions() as session:
        await get_or_404(session, Group, group_id, "group")
        users = await session.scalars(
            select(User)
            .join(GroupMembership, GroupMembership.user_id == User.id)
            .where(GroupMembership.group_id == group_id)
            .order_by(User.name)
        )
        return list(users.all())


async def user_groups(deps: Deps, user_id: str) -> list[Group]:
    async with deps.sessions() as session:
        await get_or_404(session, User, user_id, "user")
        groups = await session.scalars(
            select(Group)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(GroupMembership.user_id == user_id)
            .order_by(Group.name)
        )
        return list(groups.all())


async def add_member(deps: Deps, group_id: str, user_id: str) -> None:
    async with deps.sessions.begin() as session:
        await get_or_404(session, Group, group_id, "group")
        await get_or_404(session, User, user_id, "user")
        await try_insert(session, GroupMembership(group_id=group_id, user_id=user_id))
    deps.tokens.forget(user_id)


def not_member(group_id: str, user_id: str) -> NotFound:
    return NotFound(f"User {user_id} is not a member of group {group_id}.")


async def check_member(deps: Deps, group_id: str, user_id: str) -> None:
    async with deps.sessions() as session:
        await get_or_404(session, Group, group_id, "group")
        await get_or_404(session, User, user_id, "user")
        if await session.get(GroupMembership, (group_id, user_id)) is None:
            raise not_member(group_id, user_id)


async def remove_member(deps: Deps, group_id: str, user_id: str) -> None:
    async with deps.sessions.begin() as session:
        await get_or_404(session, Group, group_id, "group")
        await get_or_404(session, User, user_id, "user")
        result = await session.execute(
            delete(GroupMembership).where(
                GroupMembership.group_id == group_id, GroupMembership.user_id == user_id
            )
        )
    if not result.rowcount:
        raise not_member(group_id, user_id)
    deps.tokens.forget(user_id)  # its tokens lose the group's roles at once here
