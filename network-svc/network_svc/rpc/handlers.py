"""RPC methods on the ``network`` topic that other services (compute) call.

    port = await rpc.call("network", "create_port", network_id=net, device_id=server_id,
                          device_owner="compute:nova", timeout=10)
    bound = await rpc.call("network", "update_port_binding", port_id=port["id"], host="cn1")
    bound["status"], bound["bridge"], bound["mtu"]   # "ACTIVE" once cn1's agent wired it
    found = await rpc.call("network", "find_security_groups", names_or_ids=["web"])
    await rpc.call("network", "update_port_security_groups", port_id=port["id"],
                   add=[found["security_groups"][0]["id"]])

Each runs in one transaction as the caller's context (``current_context()``), so a
project still sees only its own ports; events are written in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc import RpcRouter
from common_rpc.audit import AuditReport, require_admin
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.context import RequestContext, current_context
from common_rpc.errors import Conflict, Forbidden, Invalid, NotFound, RpcError
from common_rpc.methods import Empty

from ..contracts import AUDIT, HOST_STATE, HostState
from ..db.models import Network, Port, SecurityGroup
from ..domain import audit as network_audit
from ..domain import changes, desired, networks, port_rows, ports, push, security_groups
from ..domain.common import transaction
from ..domain.errors import invalid
from ..wiring import Deps

rpc = RpcRouter()


@rpc.handler()
async def create_port(
    deps: Deps,
    network_id: str,
    name: str = "",
    device_id: str = "",
    device_owner: str = "",
    fixed_ips: list[dict[str, Any]] | None = None,
    security_groups: list[str] | None = None,
    mac_address: str | None = None,
) -> dict[str, Any]:
    ctx = current_context()
    body: dict[str, Any] = {
        "network_id": network_id,
        "name": name,
        "device_id": device_id,
        "device_owner": device_owner,
    }
    for key, value in (
        ("fixed_ips", fixed_ips),
        ("security_groups", security_groups),
        ("mac_address", mac_address),
    ):
        if value is not None:
            body[key] = value
    async with transaction(deps.sessions) as session:
        return await _reply(session, await ports.create(session, ctx, deps.settings, body), ctx)


@rpc.handler()
async def get_network(deps: Deps, network_id: str) -> dict[str, Any]:
    """The network as the caller sees it (its own, shared or external), or NotFound."""
    ctx = current_context()
    async with transaction(deps.sessions, write=False) as session:
        net = await networks.get(session, ctx, network_id)
        return {
            "id": net.id,
            "name": net.name,
            "project_id": net.project_id,
            "shared": net.shared,
            "router:external": net.external,
        }


@rpc.handler()
async def get_port(deps: Deps, port_id: str) -> dict[str, Any]:
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        return await _reply(session, await ports.get(session, ctx, port_id), ctx)


async def _reply(session: AsyncSession, port: Port, ctx: RequestContext) -> dict[str, Any]:
    """The port's API view, and its network's name (compute keys ``addresses`` by it)."""
    name = await session.scalar(select(Network.name).where(Network.id == port.network_id))
    return ports.view(port, ctx) | {"network_name": name or ""}


@rpc.handler()
async def update_port(
    deps: Deps,
    port_id: str,
    device_id: str | None = None,
    device_owner: str | None = None,
    unbind: bool = False,
) -> dict[str, Any]:
    """Claim a port for a server (device id and owner), or give it back: ``unbind`` clears
    its host, takes it DOWN and has the old host unwire it."""
    ctx = current_context()
    body: dict[str, Any] = {}
    if device_id is not None:
        body["device_id"] = device_id
    if device_owner is not None:
        body["device_owner"] = device_owner
    async with transaction(deps.sessions) as session:
        port = await ports.update(session, ctx, port_id, body) if body else None
        old_host = ""
        if unbind:
            port, old_host = await ports.unbind(session, ctx, port_id)
        port = port or await ports.get(session, ctx, port_id)
        out = await _reply(session, port, ctx)
    if old_host:
        await push.port_unbound(deps, port_id, old_host)
    return out


def _strings(value: Any, key: str) -> list[str]:
    """A list of non-empty strings, each once, in the order given."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise invalid(f"Invalid input for {key}: expected a list of non-empty strings.")
    return list(dict.fromkeys(value))


@rpc.handler()
async def update_port_security_groups(
    deps: Deps, port_id: str, add: list[str] | None = None, remove: list[str] | None = None
) -> dict[str, Any]:
    """Add and remove groups (ids) of one port in one transaction, so two servers' actions
    never lose each other's change; idempotent. The reply is the port with the ids this
    call ``added`` and ``removed``. As after a port update through the API, its host
    re-wires it and the hosts matching on its groups refill their member sets."""
    adding, dropping = _strings(add or [], "add"), _strings(remove or [], "remove")
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        # The row lock (PostgreSQL; SQLite's writer lock already) comes before the read.
        await session.execute(ports.visible(ctx).where(Port.id == port_id).with_for_update())
        port = await ports.get(session, ctx, port_id)
        before = [link.security_group_id for link in port.security_groups]
        wanted = [g for g in before if g not in dropping]
        wanted += [g for g in adding if g not in wanted]
        if set(wanted) != set(before):
            try:
                port = await ports.update(session, ctx, port_id, {"security_groups": wanted})
            except Invalid as exc:
                if exc.details.get("type") != "PortSecurityAndIPRequiredForSecurityGroups":
                    raise
                # Neutron's API answers 400; this call's contract (compute's
                # SecurityGroupCannotBeApplied) has always been a Conflict.
                raise Conflict(exc.message, details=exc.details) from None
        rewired = session.info.get(changes.REWIRED_KEY)
        out = await _reply(session, port, ctx)
    out["added"] = [g for g in wanted if g not in before]
    out["removed"] = [g for g in before if g not in wanted]
    if rewired is not None:
        rewired_id, groups = rewired
        await push.ports_rewired(deps, [rewired_id])
        await push.members_changed(deps, groups)
    return out


@rpc.handler()
async def find_security_groups(
    deps: Deps, names_or_ids: list[str], missing_ok: bool = False
) -> dict[str, Any]:
    """The caller's project's groups for each entry, found as Neutron's client finds one
    (an id, else a name only one group has), in the order asked, each once.

    ``default`` is made if the project has none yet (as its first port would). An entry
    that matches nothing is NotFound (skipped with ``missing_ok``), a name that several
    groups share is Conflict; both carry the entry as ``details["name"]``.
    """
    wanted = _strings(names_or_ids, "names_or_ids")
    ctx = current_context()
    project_id = ctx.project_id
    if not project_id:
        raise invalid("A project-scoped token is required.")
    mine = select(SecurityGroup).where(SecurityGroup.project_id == project_id)
    async with transaction(deps.sessions, write="default" in wanted) as session:
        if "default" in wanted:
            await security_groups.ensure_default(session, ctx, project_id)
        by_id = {g.id: g for g in await session.scalars(mine.where(SecurityGroup.id.in_(wanted)))}
        rest = [entry for entry in wanted if entry not in by_id]
        named: dict[str, list[SecurityGroup]] = {}
        for group in await session.scalars(mine.where(SecurityGroup.name.in_(rest))):
            named.setdefault(group.name, []).append(group)
        found: dict[str, SecurityGroup] = {}
        for entry in wanted:
            matches = [by_id[entry]] if entry in by_id else named.get(entry, [])
            if len(matches) > 1:
                raise Conflict(
                    f"Multiple security_group matches found for name '{entry}', "
                    "use an ID to be more specific.",
                    details={"type": "NoUniqueMatch", "name": entry},
                )
            if not matches:
                if missing_ok:
                    continue
                raise NotFound(
                    f"Security group {entry} not found for project {project_id}.",
                    details={"type": "SecurityGroupNotFound", "name": entry},
                )
            found.setdefault(matches[0].id, matches[0])
        return {"security_groups": [security_groups.view(g, ctx) for g in found.values()]}


@rpc.handler()
async def delete_port(deps: Deps, port_id: str) -> dict[str, Any]:
    """Idempotent: a port that is already gone answers ``deleted: False``."""
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        try:
            gone = await ports.remove(session, ctx, port_id)
        except NotFound:
            # A retried delete finds the port gone: that is success, not an error.
            return {"id": port_id, "deleted": False}
        changed = dict(changes.routers(session))
    await push.port_removed(deps, gone, changed)
    return {"id": port_id, "deleted": True}


@rpc.handler()
async def delete_ports(deps: Deps, device_id: str) -> dict[str, Any]:
    """Every port of the caller's project on ``device_id`` (a server's cleanup, also of
    ports a timed-out create made); idempotent."""
    if not device_id:
        raise Invalid("device_id is required")
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        mine = ports.visible(ctx).where(Port.device_id == device_id)
        ids = [port.id for port in await session.scalars(mine)]
        gone = [await ports.remove(session, ctx, port_id) for port_id in ids]
        changed = dict(changes.routers(session))
    for port in gone:
        await push.port_removed(deps, port, changed)
        changed = {}
    return {"device_id": device_id, "deleted": ids}


@rpc.handler()
async def update_port_binding(deps: Deps, port_id: str, host: str) -> dict[str, Any]:
    """Record ``binding:host_id``, have the host's agent wire the port, then mark it ACTIVE.

    The binding commits first, with a new generation; the agent gets the port's whole
    desired state. On success the port goes DOWN -> ACTIVE (compare-and-swap on that
    generation) and ``network.port.update.end`` is written in the same transaction. If
    the agent fails or does not answer in time, the port stays DOWN and the reply carries
    ``binding:error`` = ``{"code", "message", "details"}`` (e.g. code ``timeout``).
    Once wired, other hosts refill the member sets of the port's groups (a cast).
    """
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        port = await ports.bind(session, ctx, port_id, host)
        state = await desired.port_state(session, port)
        groups = [link.security_group_id for link in port.security_groups]
        out = await _reply(session, port, ctx)
    out["binding:host_id"] = host
    out["bridge"] = port_rows.bridge_name(port.network_id)
    out["mtu"] = state.network.mtu
    try:
        wired = await deps.agent(host).wire_port(state)
    except RpcError as exc:
        out["binding:error"] = exc.to_wire()
        return out
    async with transaction(deps.sessions) as session:
        port = await ports.mark_active(session, ctx, port_id, state.generation)
        out |= ports.view(port, ctx)
    # wired: the hosts whose rules match on its groups let its addresses in now
    await push.members_changed(deps, groups)
    out["bridge"] = wired.bridge
    out["device"] = wired.device
    out["observed_generation"] = wired.observed_generation
    return out


@rpc.implement(HOST_STATE)
async def host_state(deps: Deps, request: HostStateRequest) -> HostState:
    """Everything bound to the host (network-agent's reconcile); service identity only."""
    if not current_context().is_admin:
        raise Forbidden("host_state is for the network service's own agents")
    async with transaction(deps.sessions) as session:
        return await desired.host_state(session, request.host)


@rpc.implement(AUDIT)
async def audit(deps: Deps, request: Empty) -> AuditReport:
    """``stackling audit network``: the DB against itself and every agent's host."""
    require_admin()
    return await network_audit.audit(deps)
