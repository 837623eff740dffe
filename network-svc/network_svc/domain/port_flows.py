"""What another service (compute) does with ports over RPC, each a flow across the
database, the host's agent and the pushes to other hosts: a port made for a server,
claimed or given back, bound on a host (wired there, then ACTIVE), its groups changed,
deleted alone or with its device.

Each runs as the caller's context, so a project reaches only its own ports; events are
written in the transactions that make the changes, and the hosts are told after the
commit (``push``).

    port = await create(deps, ctx, CreatePort(network_id=net, device_id=server_id))
    bound = await bind(deps, ctx, port.id, "cn1")     # ACTIVE, or DOWN with binding:error
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.network import (
    BoundPort,
    CreatePort,
    DevicePortsDeleted,
    Fault,
    NetworkInfo,
    Port,
    PortDeleted,
    PortGroupsChanged,
    UpdatePort,
)
from common_rpc.errors import Conflict, Invalid, NotFound, RpcError

from ..db.models import Network
from ..db.models import Port as PortRow
from ..wiring import Deps
from . import changes, desired, networks, port_rows, ports, push
from .common import transaction
from .errors import invalid

P = TypeVar("P", bound=Port)


async def reply(
    session: AsyncSession,
    port: PortRow,
    ctx: RequestContext,
    model: type[P] = Port,
    extra: dict[str, Any] | None = None,
) -> P:
    """The port's API view, and its network's name (compute keys ``addresses`` by it);
    ``extra``: more attributes, by their wire names."""
    name = await session.scalar(select(Network.name).where(Network.id == port.network_id))
    view = ports.view(port, ctx) | {"network_name": name or ""}
    return model.model_validate(view | (extra or {}))


async def create(deps: Deps, ctx: RequestContext, request: CreatePort) -> Port:
    # Unset attributes are left out, as in an API request's body.
    body = request.model_dump(exclude_none=True)
    async with transaction(deps.sessions) as session:
        return await reply(session, await ports.create(session, ctx, deps.settings, body), ctx)


async def get(deps: Deps, ctx: RequestContext, port_id: str) -> Port:
    async with transaction(deps.sessions) as session:
        return await reply(session, await ports.get(session, ctx, port_id), ctx)


async def network(deps: Deps, ctx: RequestContext, network_id: str) -> NetworkInfo:
    """The network as the caller sees it (its own, shared or external), or NotFound."""
    async with transaction(deps.sessions, write=False) as session:
        net = await networks.get(session, ctx, network_id)
        return NetworkInfo(
            id=net.id,
            name=net.name,
            project_id=net.project_id,
            shared=net.shared,
            external=net.external,
        )


async def update(deps: Deps, ctx: RequestContext, request: UpdatePort) -> Port:
    """Claim a port for a server (device id and owner), or give it back: ``unbind`` clears
    its host, takes it DOWN and has the old host unwire it."""
    body = request.model_dump(include={"device_id", "device_owner"}, exclude_none=True)
    port_id = request.port_id
    async with transaction(deps.sessions) as session:
        port = await ports.update(session, ctx, port_id, body) if body else None
        old_host = ""
        if request.unbind:
            port, old_host = await ports.unbind(session, ctx, port_id)
        port = port or await ports.get(session, ctx, port_id)
        out = await reply(session, port, ctx)
    if old_host:
        await push.port_unbound(deps, port_id, old_host)
        # the other hosts serving the network drop its tunnel entries
        await push.networks_changed(deps, {out.network_id})
    return out


def group_ids(value: list[str], key: str) -> list[str]:
    """Non-empty strings, each once, in the order given."""
    if not all(value):
        raise invalid(f"Invalid input for {key}: expected a list of non-empty strings.")
    return list(dict.fromkeys(value))


async def change_groups(
    deps: Deps, ctx: RequestContext, port_id: str, add: list[str], remove: list[str]
) -> PortGroupsChanged:
    """Add and remove groups (ids) of one port in one transaction, so two servers' actions
    never lose each other's change; idempotent. The reply is the port with the ids this
    call ``added`` and ``removed``. As after a port update through the API, its host
    re-wires it and the hosts matching on its groups refill their member sets."""
    adding, dropping = group_ids(add, "add"), group_ids(remove, "remove")
    async with transaction(deps.sessions) as session:
        # The row lock (PostgreSQL; SQLite's writer lock already) comes before the read.
        await session.execute(port_rows.visible(ctx).where(PortRow.id == port_id).with_for_update())
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
        out = await reply(
            session,
            port,
            ctx,
            PortGroupsChanged,
            {
                "added": [g for g in wanted if g not in before],
                "removed": [g for g in before if g not in wanted],
            },
        )
    if rewired is not None:
        rewired_id, groups = rewired
        await push.ports_rewired(deps, [rewired_id])
        await push.members_changed(deps, groups)
    return out


async def delete(deps: Deps, ctx: RequestContext, port_id: str) -> PortDeleted:
    """Idempotent: a port that is already gone answers ``deleted: False``."""
    async with transaction(deps.sessions) as session:
        try:
            gone = await ports.remove(session, ctx, port_id)
        except NotFound:
            # A retried delete finds the port gone: that is success, not an error.
            return PortDeleted(id=port_id, deleted=False)
        changed = dict(changes.routers(session))
    await push.port_removed(deps, gone, changed)
    return PortDeleted(id=port_id, deleted=True)


async def delete_device_ports(
    deps: Deps, ctx: RequestContext, device_id: str
) -> DevicePortsDeleted:
    """Every port of the caller's project on ``device_id`` (a server's cleanup, also of
    ports a timed-out create made); idempotent."""
    if not device_id:
        raise Invalid("device_id is required")
    async with transaction(deps.sessions) as session:
        mine = port_rows.visible(ctx).where(PortRow.device_id == device_id)
        ids = [port.id for port in await session.scalars(mine)]
        gone = [await ports.remove(session, ctx, port_id) for port_id in ids]
        changed = dict(changes.routers(session))
    for port in gone:
        await push.port_removed(deps, port, changed)
        changed = {}
    return DevicePortsDeleted(device_id=device_id, deleted=ids)


async def bind(deps: Deps, ctx: RequestContext, port_id: str, host: str) -> BoundPort:
    """Record ``binding:host_id``, have the host's agent wire the port, then mark it ACTIVE.

    The binding commits first, with a new generation; the agent gets the port's whole
    desired state. On success the port goes DOWN -> ACTIVE (compare-and-swap on that
    generation) and ``network.port.update.end`` is written in the same transaction. If
    the agent fails or does not answer in time, the port stays DOWN and the reply carries
    ``binding:error`` (code ``timeout``, say). Once wired, other hosts refill the member
    sets of the port's groups (a cast).
    """
    async with transaction(deps.sessions) as session:
        old_host = await session.scalar(
            port_rows.visible(ctx).where(PortRow.id == port_id).with_only_columns(PortRow.host_id)
        )
        port = await ports.bind(session, ctx, port_id, host)
        state = await desired.port_state(session, port)
        groups = [link.security_group_id for link in port.security_groups]
        out = await reply(
            session,
            port,
            ctx,
            BoundPort,
            {
                "binding:host_id": host,
                "bridge": port_rows.bridge_name(port.network_id),
                "mtu": state.network.mtu,
            },
        )
    if old_host and old_host != host:  # moved: the old host lets it go
        await push.port_unbound(deps, port_id, old_host)
    try:
        wired = await deps.agent(host).wire_port(state)
    except RpcError as exc:
        return out.model_copy(update={"binding_error": Fault.model_validate(exc.to_wire())})
    if state.network.segmentation_type == "vxlan":
        # l2-population: the other hosts serving the network learn where the port is
        await push.networks_changed(deps, {state.network.network_id}, skip=host)
    async with transaction(deps.sessions) as session:
        port = await ports.mark_active(session, ctx, port_id, state.generation)
        view = ports.view(port, ctx)
    # wired: the hosts whose rules match on its groups let its addresses in now
    await push.members_changed(deps, groups)
    return BoundPort.model_validate(
        out.model_dump(by_alias=True)
        | view
        | {
            "bridge": wired.bridge,
            "device": wired.device,
            "observed_generation": wired.observed_generation,
        }
    )
