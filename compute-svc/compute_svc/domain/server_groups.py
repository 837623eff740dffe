"""Nova's server groups: ``affinity`` (every member on one host) and ``anti-affinity``
(no two on one host, or at most ``max_server_per_host`` from 2.64 on).

A server joins a group at its create (``os:scheduler_hints: {"group": id}``), in the
transaction that inserts its row, and leaves it when the row is removed. The placement
of a member bumps the group's ``generation`` in the transaction that claims its host:
that write makes two members' placements take turns (a row lock on PostgreSQL, the
database's write lock on SQLite), so the second one reads the first's host and two
racing boots of an anti-affinity group never share a host.

    group = await create(session, ctx, {"name": "g", "policies": ["anti-affinity"]}, v)
    await join(session, server, group_id)               # at the server's create
    rule = await rule_for(session, server_id)           # at its placement: Rule | None
    rule.allows("cn1")
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import Forbidden, NotFound

from ..db.models import Migration, Server, ServerGroup, ServerGroupMember
from . import quotas
from .common import new_id, nova_name
from .errors import bad_field, invalid

AFFINITY, ANTI_AFFINITY = "affinity", "anti-affinity"
POLICIES = (AFFINITY, ANTI_AFFINITY)
# The microversion whose shape has ``policy`` and ``rules`` instead of ``policies``.
POLICY_RULES = (2, 64)


def not_found(group_id: str) -> NotFound:
    return NotFound(f"Instance group {group_id} could not be found.")


def _check_body(body: dict[str, Any], version: tuple[int, int]) -> tuple[str, dict[str, Any]]:
    """The group's policy and rules from a create body of ``version``'s schema."""
    if "name" not in body:
        raise bad_field("server_group", body, "'name' is a required property")
    nova_name(body)
    if version >= POLICY_RULES:
        allowed = {"name", "policy", "rules"}
        if "policy" not in body:
            raise bad_field("server_group", body, "'policy' is a required property")
        policy = body["policy"]
        if policy not in POLICIES:
            raise bad_field("policy", policy, f"{policy!r} is not one of {list(POLICIES)!r}")
        rules = body.get("rules", {})
        if not isinstance(rules, dict):
            raise bad_field("rules", rules, f"{rules!r} is not of type 'object'")
        extra = set(rules) - {"max_server_per_host"}
        if extra:
            raise bad_field(
                "rules", rules, f"Additional properties are not allowed {sorted(extra)}"
            )
        if rules:
            if policy != ANTI_AFFINITY:
                raise invalid("Only anti-affinity policy supports rules.")
            most = rules["max_server_per_host"]
            if isinstance(most, str) and most.isdigit():
                most = int(most)
            if isinstance(most, bool) or not isinstance(most, int) or most < 1:
                raise bad_field("max_server_per_host", most, f"{most!r} is less than 1")
            rules = {"max_server_per_host": most}
    else:
        allowed = {"name", "policies"}
        if "policies" not in body:
            raise bad_field("server_group", body, "'policies' is a required property")
        policies = body["policies"]
        if not isinstance(policies, list):
            raise bad_field("policies", policies, f"{policies!r} is not of type 'array'")
        if len(policies) != 1:
            reason = f"{policies!r} is {'too short' if not policies else 'too long'}"
            raise bad_field("policies", policies, reason)
        policy = policies[0]
        if policy not in POLICIES:
            raise bad_field("0", policy, f"{policy!r} is not one of {list(POLICIES)!r}")
        rules = {}
    unknown = set(body) - allowed
    if unknown:
        words = ", ".join(repr(k) for k in sorted(unknown))
        reason = f"Additional properties are not allowed ({words} "
        reason += f"{'was' if len(unknown) == 1 else 'were'} unexpected)"
        raise bad_field("server_group", body, reason)
    return str(policy), rules


async def create(
    session: AsyncSession, ctx: RequestContext, body: Any, version: tuple[int, int]
) -> ServerGroup:
    """A group of the caller's project; 403 past the project's ``server_groups`` quota."""
    if not isinstance(body, dict):
        raise bad_field("server_group", body, f"{body!r} is not of type 'object'")
    policy, rules = _check_body(body, version)
    if not ctx.project_id:
        raise invalid("A project-scoped token is required.")
    held = await session.scalar(
        select(func.count())
        .select_from(ServerGroup)
        .where(ServerGroup.project_id == ctx.project_id)
    )
    limit = quotas.EXTRA["server_groups"]
    if limit >= 0 and int(held or 0) >= limit:
        raise Forbidden("Quota exceeded, too many server groups.")
    group = ServerGroup(
        id=new_id(),
        project_id=ctx.project_id,
        user_id=ctx.user_id or "",
        name=body["name"],
        policy=policy,
        rules=rules,
        generation=0,
    )
    session.add(group)
    await session.flush()
    return group


async def get(session: AsyncSession, ctx: RequestContext, group_id: str) -> ServerGroup:
    """The group if the caller may see it (its project's, or any for an admin); 404."""
    group = await session.get(ServerGroup, group_id)
    if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
        raise not_found(group_id)
    return group


async def listed(
    session: AsyncSession, ctx: RequestContext, all_projects: bool
) -> list[ServerGroup]:
    query = select(ServerGroup).order_by(ServerGroup.created_at, ServerGroup.id)
    if not (ctx.is_admin and all_projects):
        query = query.where(ServerGroup.project_id == ctx.project_id)
    return list(await session.scalars(query))


async def remove(session: AsyncSession, ctx: RequestContext, group_id: str) -> None:
    group = await get(session, ctx, group_id)
    await session.execute(delete(ServerGroupMember).where(ServerGroupMember.group_id == group.id))
    await session.delete(group)


async def members(session: AsyncSession, group_ids: list[str]) -> dict[str, list[str]]:
    """Each group's servers (those whose row still exists), oldest first."""
    out: dict[str, list[str]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return out
    rows = await session.execute(
        select(ServerGroupMember.group_id, ServerGroupMember.server_id)
        .join(Server, Server.id == ServerGroupMember.server_id)
        .where(ServerGroupMember.group_id.in_(group_ids))
        .order_by(Server.created_at, Server.id)
    )
    for group_id, server_id in rows.all():
        out[group_id].append(server_id)
    return out


def view(group: ServerGroup, members: list[str], version: tuple[int, int]) -> dict[str, Any]:
    """Nova's shape at ``version``: 2.1 ``policies`` and ``metadata``; 2.13 adds the
    project and user; 2.64 ``policy`` and ``rules`` instead of the first two."""
    out: dict[str, Any] = {"id": group.id, "name": group.name}
    if version >= POLICY_RULES:
        out |= {"policy": group.policy, "rules": dict(group.rules or {})}
    else:
        out |= {"policies": [group.policy], "metadata": {}}
    out["members"] = members
    if version >= (2, 13):
        out |= {"project_id": group.project_id, "user_id": group.user_id}
    return out


async def join(session: AsyncSession, server: Server, group_id: Any) -> None:
    """The new server joins the group its hints named (the create's transaction):
    400 for a group the project does not have, 403 past ``server_group_members``."""
    if not isinstance(group_id, str):
        raise bad_field("group", group_id, f"{group_id!r} is not of type 'string'")
    group = await session.get(ServerGroup, group_id)
    if group is None or group.project_id != server.project_id:
        raise invalid(f"Invalid server group {group_id}: it could not be found.")
    count = await session.scalar(
        select(func.count())
        .select_from(ServerGroupMember)
        .where(ServerGroupMember.group_id == group.id)
    )
    limit = quotas.EXTRA["server_group_members"]
    if limit >= 0 and int(count or 0) >= limit:
        raise Forbidden("Quota exceeded, too many servers in group")
    session.add(ServerGroupMember(server_id=server.id, group_id=group.id))
    await session.flush()


async def leave(session: AsyncSession, server_id: str) -> None:
    """A removed server is no member any more (its row's transaction)."""
    await session.execute(delete(ServerGroupMember).where(ServerGroupMember.server_id == server_id))


@dataclass(frozen=True)
class Rule:
    """What a group asks of one member's host: the other members' hosts (with how many
    each holds) and the group's policy."""

    group_id: str
    policy: str
    taken: Counter[str] = field(default_factory=Counter)
    max_per_host: int = 1

    def allows(self, host: str) -> bool:
        if self.policy == AFFINITY:
            return not self.taken or host in self.taken
        return self.taken[host] < self.max_per_host


async def rule_for(session: AsyncSession, server_id: str) -> Rule | None:
    """The rule of the server's group, read after taking the group's turn (see the
    module's note); None for a server in no group. Call it in the transaction that claims."""
    group_id = await session.scalar(
        select(ServerGroupMember.group_id).where(ServerGroupMember.server_id == server_id)
    )
    if group_id is None:
        return None
    await session.execute(
        update(ServerGroup)
        .where(ServerGroup.id == group_id)
        .values(generation=ServerGroup.generation + 1)
        .execution_options(synchronize_session=False)
    )
    group = await session.get(ServerGroup, group_id, populate_existing=True)
    if group is None:
        return None
    others = select(ServerGroupMember.server_id).where(
        ServerGroupMember.group_id == group_id, ServerGroupMember.server_id != server_id
    )
    taken: Counter[str] = Counter()
    placed = await session.execute(
        select(Server.host).where(Server.id.in_(others), Server.host.is_not(None))
    )
    for (host,) in placed.all():
        taken[host] += 1
    # A member moving holds its destination too, until its move ends.
    moving = await session.execute(
        select(Migration.dest_host).where(
            Migration.server_id.in_(others),
            Migration.status.in_(("migrating", "finished")),
            Migration.dest_host.is_not(None),
        )
    )
    for (host,) in moving.all():
        taken[host] += 1
    most = int((group.rules or {}).get("max_server_per_host", 1))
    return Rule(group.id, group.policy, taken, most)
