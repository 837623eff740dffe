"""Networks: create with a segment from the configured range, scoped reads, delete if unused."""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, delete, exists, func, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import NetworkPayload
from common_rpc.outbox import add_event

from ..db.models import Network, Port, Subnet
from ..settings import NetworkSettings
from . import dhcp, events, policy, quotas, zones
from .common import flag, new_id, owner_of, owns, standard_view, text, touch, try_insert
from .errors import conflict, invalid, invalid_input, not_found, policy_denied, read_only
from .port_rows import remove_row

TYPES = ("local", "flat", "vlan", "vxlan")
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def view(
    net: Network, ctx: RequestContext, settings: NetworkSettings | None = None
) -> dict[str, Any]:
    """The network as Neutron shows it; ``settings`` (the zones of hosts) for its
    availability_zones: its DHCP server's (none without one)."""
    placed = []
    if settings is not None and "dhcp_ports" not in sa_inspect(net).unloaded:
        placed = zones.placed(settings, [p.host_id for p in net.dhcp_ports])
    out = standard_view(net) | {
        "status": "ACTIVE",
        "admin_state_up": net.admin_state_up,
        "subnets": [s.id for s in net.subnets],
        "shared": net.shared,
        "router:external": net.external,
        "mtu": net.mtu,
        "port_security_enabled": net.port_security_enabled,
        "availability_zones": placed,
        "availability_zone_hints": list(net.availability_zone_hints or ()),
        "is_default": False,
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
    }
    if ctx.is_admin:
        out["provider:network_type"] = net.network_type
        out["provider:physical_network"] = net.physical_network
        out["provider:segmentation_id"] = net.segmentation_id
    return out


def visible(ctx: RequestContext) -> Any:
    query = select(Network).order_by(Network.created_at, Network.id).options(_DHCP_PORTS)
    if not ctx.is_admin:
        query = query.where(
            or_(Network.project_id == ctx.project_id, Network.shared, Network.external)
        )
    return query


_DHCP_PORTS = selectinload(Network.dhcp_ports)


# One query with its subnets (every port create reads them), not one per relation; built
# once per kind of caller, the ids bound at execution (building it cost more than running it).
_GET_ANY = (
    select(Network)
    .where(Network.id == bindparam("network_id"))
    .options(joinedload(Network.subnets))
)
_GET_VISIBLE = _GET_ANY.where(
    or_(Network.project_id == bindparam("project_id"), Network.shared, Network.external)
)


async def get(session: AsyncSession, ctx: RequestContext, network_id: str) -> Network:
    query, params = (
        (_GET_ANY, {}) if ctx.is_admin else (_GET_VISIBLE, {"project_id": ctx.project_id})
    )
    found = await session.scalars(query, {"network_id": network_id, **params})
    net = found.unique().first()
    if net is None:
        raise not_found("Network", network_id)
    return net


async def get_shown(session: AsyncSession, ctx: RequestContext, network_id: str) -> Network:
    """``get`` with what the view shows beyond the row (its DHCP server's host)."""
    net = await get(session, ctx, network_id)
    await _load_dhcp_ports(session, net)
    return net


async def _load_dhcp_ports(session: AsyncSession, net: Network) -> None:
    query = select(Network).where(Network.id == net.id).options(_DHCP_PORTS)
    await session.execute(query.execution_options(populate_existing=True))


async def get_owned(
    session: AsyncSession, ctx: RequestContext, network_id: str, action: str
) -> Network:
    """A network the caller may change: 404 if hidden, 403 if only visible (shared or
    external), as Neutron's policy answers a project that may see but not change it."""
    net = await get(session, ctx, network_id)
    if not owns(ctx, net.project_id):
        raise policy_denied(action)
    return net


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[Network]:
    return list(await session.scalars(visible(ctx)))


async def _place(session: AsyncSession, net: Network, settings: NetworkSettings) -> None:
    """Insert ``net``, taking a free segment id when its type needs one."""
    if net.network_type not in ("vxlan", "vlan") or net.segmentation_id is not None:
        if not await try_insert(session, net):
            if net.network_type == "vlan":
                raise conflict(
                    "VlanIdInUse",
                    f"Unable to create the network. The VLAN {net.segmentation_id} on "
                    f"physical network {net.physical_network} is in use.",
                )
            raise conflict(
                "TunnelIdInUse",
                f"Unable to create the network. The tunnel ID {net.segmentation_id} is in use.",
            )
        return
    span = settings.segment_range(net.network_type)
    for _ in range(100):
        used = set(
            await session.scalars(
                select(Network.segmentation_id).where(Network.network_type == net.network_type)
            )
        )
        free = [i for i in span if i not in used]
        if not free:
            break
        net.segmentation_id = random.choice(free)
        # The unique (type, segment) key settles a race: the loser picks again.
        if await try_insert(session, net):
            return
        net.segmentation_id = None
    raise conflict(
        "NoNetworkAvailable",
        "Unable to create the network. No project network is available for allocation.",
    )


def _provider(
    body: dict[str, Any], settings: NetworkSettings
) -> tuple[str, str | None, int | None]:
    kind = body.get("provider:network_type") or settings.default_network_type
    if kind not in TYPES:
        raise invalid_input(f"network_type value '{kind}' not supported")
    physnet = body.get("provider:physical_network")
    segment = body.get("provider:segmentation_id")
    if kind in ("flat", "vlan"):
        physnet = physnet or settings.physical_network
    elif physnet:
        raise invalid(f"provider:physical_network is not allowed for {kind} networks.")
    if segment is not None:
        if kind not in ("vlan", "vxlan") or not isinstance(segment, int):
            raise invalid("Invalid input for provider:segmentation_id.")
        limit = 4094 if kind == "vlan" else (1 << 24) - 1
        if not 1 <= segment <= limit:
            raise invalid(f"provider:segmentation_id {segment} is out of range.")
    return kind, physnet, segment


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> Network:
    policy.enforce(ctx, "create", "network", body)
    hints = zones.zone_hints(settings, "network", body)
    kind, physnet, segment = _provider(body, settings)
    mtu = body.get("mtu") or (settings.vxlan_mtu if kind == "vxlan" else 1500)
    if not isinstance(mtu, int) or not 68 <= mtu <= 9000:
        raise invalid("Invalid input for mtu.")
    net = Network(
        id=new_id(),
        project_id=owner_of(ctx, body),
        name=text(body, "name"),
        description=text(body, "description"),
        admin_state_up=flag(body, "admin_state_up", True),
        shared=flag(body, "shared", False),
        external=flag(body, "router:external", False),
        mtu=mtu,
        port_security_enabled=flag(body, "port_security_enabled", True),
        network_type=kind,
        physical_network=physnet,
        segmentation_id=segment,
        availability_zone_hints=hints,
    )
    await _place(session, net, settings)
    await quotas.reserve(session, settings, net.project_id, "network")
    await session.refresh(net, ["subnets"])
    await _emit(session, ctx, net, events.CREATE)
    return net


async def update(
    session: AsyncSession, ctx: RequestContext, network_id: str, body: dict[str, Any]
) -> Network:
    policy.enforce(ctx, "update", "network", body)
    if "availability_zone_hints" in body:
        raise read_only("availability_zone_hints")
    net = await get_owned(session, ctx, network_id, "update_network")
    if any(k in body for k in PROVIDER):
        raise invalid("Provider attributes cannot be changed.")
    for key, attr in (("name", "name"), ("description", "description")):
        if key in body:
            setattr(net, attr, text(body, key))
    for key, attr in (
        ("admin_state_up", "admin_state_up"),
        ("shared", "shared"),
        ("router:external", "external"),
        ("port_security_enabled", "port_security_enabled"),
    ):
        if key in body:
            setattr(net, attr, flag(body, key, getattr(net, attr)))
    if "mtu" in body:
        if not isinstance(body["mtu"], int) or not 68 <= body["mtu"] <= 9000:
            raise invalid("Invalid input for mtu.")
        net.mtu = body["mtu"]
    touch(net)
    await session.flush()
    await _emit(session, ctx, net, events.UPDATE)
    await _load_dhcp_ports(session, net)
    return net


async def remove(session: AsyncSession, ctx: RequestContext, network_id: str) -> Network:
    """Delete the network; the removed row (the caller tells the hosts once committed)."""
    net = await get_owned(session, ctx, network_id, "delete_network")
    in_use = conflict(
        "NetworkInUse",
        f"Unable to complete operation on network {network_id}. "
        "There are one or more ports still in use on the network.",
    )
    # The row lock (PostgreSQL) holds off a subnet being added meanwhile (subnets.create
    # takes it first), so the subnets counted here are those deleted below. Released
    # first, in the quota module's resource order (a refusal below rolls it all back).
    await session.execute(select(Network.id).where(Network.id == network_id).with_for_update())
    subnet_count = await session.scalar(
        select(func.count()).select_from(Subnet).where(Subnet.network_id == network_id)
    )
    await quotas.release(session, net.project_id, "network")
    # A network's subnets are its project's (subnets.create).
    await quotas.release(session, net.project_id, "subnet", int(subnet_count or 0))
    await dhcp.remove_port(session, ctx, network_id)
    # Neutron's auto-deleted owners: a DHCP port goes with its network, the cloud's or
    # one its project made by hand.
    owned = select(Port).where(
        Port.network_id == network_id, Port.device_owner == dhcp.DEVICE_OWNER
    )
    for port in list(await session.scalars(owned)):
        await remove_row(session, ctx, port)
    if await session.scalar(select(exists().where(Port.network_id == network_id))):
        raise in_use
    try:
        async with session.begin_nested():
            await session.execute(delete(Subnet).where(Subnet.network_id == network_id))
            await session.delete(net)
    except IntegrityError:
        # A port created meanwhile holds the network: its foreign key refuses the delete.
        raise in_use from None
    for subnet in net.subnets:
        await events.subnet_event(session, ctx, subnet, events.DELETE)
    await _emit(session, ctx, net, events.DELETE)
    return net


async def _emit(session: AsyncSession, ctx: RequestContext, net: Network, action: str) -> None:
    payload: BaseModel = NetworkPayload(
        id=net.id, project_id=net.project_id, name=net.name, status="ACTIVE"
    )
    await add_event(
        session, events.NETWORK.format(action=action), payload, project_id=net.project_id, ctx=ctx
    )
