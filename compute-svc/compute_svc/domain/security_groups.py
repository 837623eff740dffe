"""A server's security groups, kept as Nova keeps them with Neutron.

The network service owns the groups and the ports' links to them. compute finds the
groups a create names (a name or an id of the server's project), gives them to the ports
its boot makes, changes them on every port of the server for ``addSecurityGroup`` and
``removeSecurityGroup``, and records their ids and names on the server, so a server list
shows them without a call per server.

    groups = await find(deps, ["web", "default"], project_id="p1", status=400)
    await add(deps, server, "db")          # every port of the server; 404 if unknown
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from common_rpc.context import RequestContext, use_context
from common_rpc.contracts.network import SecurityGroup, SecurityGroupRule
from common_rpc.errors import Conflict, NotFound

from ..db.models import Server, utcnow
from ..wiring import Deps
from . import servers
from .common import transaction
from .errors import conflict, invalid
from .tasks import server_context

NAME_LIMIT = 255


def requested(value: Any) -> list[str] | None:
    """A create's ``[{"name": X}]`` as names or ids, each once; absent or ``[]``: None (the
    network service gives the ports their project's ``default``)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid("Invalid input for field/attribute security_groups: expected a list.")
    names: list[str] = []
    for entry in value:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or set(entry) != {"name"} or not _valid_name(name):
            raise invalid(
                "Invalid input for field/attribute security_groups: each entry is "
                f'{{"name": <name or id>}} of 1 to {NAME_LIMIT} characters.'
            )
        names.append(str(name))
    return list(dict.fromkeys(names)) or None


def _valid_name(name: Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= NAME_LIMIT and name == name.strip()


def action_name(args: Any) -> str:
    """The group of ``{"addSecurityGroup": {"name": X}}``, with Nova's 400s."""
    if not isinstance(args, dict):
        raise invalid("Missing parameter dict")
    if "name" not in args:
        raise invalid("Security group not specified")
    name = args["name"]
    if not isinstance(name, str) or not name.strip():
        raise invalid("Security group name cannot be empty")
    if len(name) > NAME_LIMIT:
        raise invalid(f"Security group name is longer than {NAME_LIMIT} characters.")
    return name


async def find(
    deps: Deps, names: list[str], *, project_id: str, status: int
) -> list[SecurityGroup]:
    """The groups (network's view), or Nova's fault: an unknown one is ``status`` (400 on a
    create, 404 on an action, each with Nova's text), a name several groups share 409."""
    try:
        return await deps.network.find_security_groups(names)
    except NotFound as exc:
        name = exc.details.get("name", ", ".join(names))
        if status == 400:
            raise invalid(f"Security group {name} not found.") from None
        raise NotFound(f"Security group {name} is not found for project {project_id}") from None
    except Conflict as exc:
        if status == 400:
            name = exc.details.get("name", ", ".join(names))
            message = (
                f"Multiple security groups found matching '{name}'. Use an ID to be more specific."
            )
            raise conflict(message) from None
        raise conflict(exc.message) from None  # neutronclient's text, which Nova passes on


def brief(groups: list[SecurityGroup]) -> list[dict[str, str]]:
    """What the server row keeps of each group."""
    return [{"id": g.id, "name": g.name or g.id} for g in groups]


async def in_force(
    deps: Deps, ids: list[str], known: list[dict[str, str]] | None
) -> list[dict[str, str]]:
    """``ids`` (what ports got) with their names: from ``known``, else one lookup (the
    ``default`` a create that named none got, a given port's own groups)."""
    ids = list(dict.fromkeys(ids))
    by_id = {g["id"]: g["name"] for g in known or []}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        found = await deps.network.find_security_groups(unknown, missing_ok=True)
        by_id |= {g["id"]: g["name"] for g in brief(found)}
    return [{"id": i, "name": by_id.get(i, i)} for i in ids]


def _port_ids(server: Server) -> list[str]:
    ids = [str(nic["port_id"]) for nic in server.nics or [] if nic.get("port_id")]
    if not ids:
        # Nova's answer when no port has the server as its device.
        raise NotFound(f"instance_id {server.id} could not be found as device id on any ports")
    return ids


async def server_action(
    deps: Deps, ctx: RequestContext, server_id: str, action: str, args: Any
) -> None:
    """``addSecurityGroup`` / ``removeSecurityGroup``: the group goes on (or off) every
    port of the server, through the network service. 404, then 400 for the body, then 409
    while the server's ports are being made or released (the change could miss one)."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        server = await servers.get(session, ctx, server_id)
        session.expunge(server)
    name = action_name(args)
    if server.status in ("BUILD", "DELETING"):
        raise servers.conflict_state(server, action)
    if action == "addSecurityGroup":
        await add(deps, server, name)
    else:
        await remove(deps, server, name)


async def of_server(deps: Deps, ctx: RequestContext, server_id: str) -> list[dict[str, Any]]:
    """``GET os-security-groups`` of a server: its groups with their rules, in Nova's shape."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        server = await servers.get(session, ctx, server_id)
        session.expunge(server)
    return await details(deps, server)


async def add(deps: Deps, server: Server, name: str) -> None:
    """Put the group on every port of the server (Nova: ports it was given too)."""
    with use_context(server_context(server)):
        [group] = brief(await find(deps, [name], project_id=server.project_id, status=404))
        ids: list[str] = []
        failure: Exception | None = None
        for port_id in _port_ids(server):
            try:
                reply = await deps.network.update_port_security_groups(port_id, add=[group["id"]])
            except NotFound:
                continue  # a given port its owner deleted meanwhile
            except Conflict as exc:  # no port security on it: Nova's 400
                failure = invalid(f"Security group {name} cannot be applied: {exc.message}")
                break
            ids += reply.security_groups
        if ids:  # on some port now: the server shows it, even if another port refused it
            await _record(deps, server, ids, add=group)
    if failure is not None:
        raise failure


async def remove(deps: Deps, server: Server, name: str) -> None:
    """Take the group off every port of the server that has it; 404 if none had it."""
    with use_context(server_context(server)):
        [group] = brief(await find(deps, [name], project_id=server.project_id, status=404))
        ids: list[str] = []
        removed = False
        for port_id in _port_ids(server):
            try:
                reply = await deps.network.update_port_security_groups(
                    port_id, remove=[group["id"]]
                )
            except NotFound:
                continue
            removed = removed or bool(reply.removed)
            ids += reply.security_groups
        await _record(deps, server, ids, remove=group["id"])
    if not removed:
        raise NotFound(f"Security group {name} not associated with the instance {server.id}")


async def _record(
    deps: Deps,
    server: Server,
    ids: list[str],
    *,
    add: dict[str, str] | None = None,
    remove: str | None = None,
) -> None:
    """Apply the change to the recorded groups under the row's lock, so two actions on one
    server keep both changes. A row that recorded none yet (made before groups were kept)
    starts from what its ports now have (``ids``)."""
    base = None
    if server.security_groups is None:
        base = await in_force(deps, ids, [add] if add else None)
    async with transaction(deps.runtime.sessions) as session:
        query = select(Server).where(Server.id == server.id).with_for_update()
        row = (await session.scalars(query)).first()
        if row is None:
            return
        groups = [g for g in (row.security_groups or base or []) if g["id"] != remove]
        if add is not None and all(g["id"] != add["id"] for g in groups):
            groups.append(add)
        row.security_groups = groups
        row.updated_at = utcnow()


async def details(deps: Deps, server: Server) -> list[dict[str, Any]]:
    """``GET /servers/{id}/os-security-groups``: the server's groups in Nova's shape."""
    if server.security_groups is not None:
        keys = [g["id"] for g in server.security_groups]
    else:  # not recorded yet: the ``default`` its boot's ports get, if any
        keys = [n["name"] for n in servers.security_group_names(server)]
    if not keys:
        return []
    with use_context(server_context(server)):
        groups = await deps.network.find_security_groups(keys, missing_ok=True)
        by_id = {g.id: g for g in groups}
        remote = {
            r.remote_group_id
            for g in groups
            for r in g.security_group_rules
            if r.remote_group_id and r.remote_group_id not in by_id
        }
        if remote:
            found = await deps.network.find_security_groups(sorted(remote), missing_ok=True)
            by_id |= {g.id: g for g in found}
    return [nova_group(g, by_id) for g in groups]


def nova_group(group: SecurityGroup, by_id: dict[str, SecurityGroup]) -> dict[str, Any]:
    """Nova's view of a Neutron group: its ingress rules only, as Nova shows them."""
    rules = [
        nova_rule(rule, by_id) for rule in group.security_group_rules if rule.direction == "ingress"
    ]
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "tenant_id": group.project_id or group.tenant_id,
        "rules": [rule for rule in rules if rule is not None],
    }


def nova_rule(rule: SecurityGroupRule, by_id: dict[str, SecurityGroup]) -> dict[str, Any] | None:
    """A rule as Nova shows it; None for one whose remote group the caller cannot see
    (Nova leaves such a rule out)."""
    protocol = rule.protocol
    low, high = rule.port_range_min, rule.port_range_max
    if protocol and low is None and high is None:
        low, high = (1, 65535) if protocol.upper() in ("TCP", "UDP") else (-1, -1)
    out: dict[str, Any] = {
        "id": rule.id,
        "parent_group_id": rule.security_group_id,
        "ip_protocol": protocol,
        "from_port": low,
        "to_port": high,
        "group": {},
        "ip_range": {},
    }
    if rule.remote_group_id:
        remote = by_id.get(rule.remote_group_id)
        if remote is None:
            return None
        out["group"] = {"name": remote.name, "tenant_id": remote.project_id}
    else:
        out["ip_range"] = {"cidr": rule.remote_ip_prefix or "0.0.0.0/0"}
    return out
