"""Floating IPs: an address of an external subnet mapped 1:1 to a port's fixed IP.

The address is held by a ``network:floatingip`` port on the external network, so the
``ip_allocations`` key keeps it unique against every other port and floating IP.
Association needs a router whose gateway is on the floating network and which has an
interface on the fixed IP's subnet; that router's agent gets the new desired state.

    fip = await create(session, ctx, {"floating_network_id": ext_id})
    fip = await update(session, ctx, fip.id, {"port_id": port_id})
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import FloatingIpPayload
from common_rpc.errors import Conflict, Invalid, NotFound
from common_rpc.outbox import add_event

from ..db.models import FloatingIp, IpAllocation, Port, Router, RouterPort, utcnow
from ..settings import NetworkSettings
from . import changes, events, ipam, networks, policy, port_rows, quotas, routers, subnet_attrs
from .common import iso, new_id, owner_of, text, uuid_attr
from .errors import (
    bad_attribute,
    bad_request,
    conflict,
    invalid,
    invalid_input,
    not_found,
    read_only,
    required,
)

FLOATINGIP = "network.floatingip.{action}.end"


def fip_id_of(fip: FloatingIp) -> str:
    return str(fip.__dict__.get("id", "")) or "?"


def status(fip: FloatingIp) -> str:
    return "ACTIVE" if fip.fixed_port_id else "DOWN"


# Neutron's fip-port-details: what a floating IP shows of the port it is associated with.
PORT_DETAILS = (
    "name",
    "network_id",
    "mac_address",
    "admin_state_up",
    "status",
    "device_id",
    "device_owner",
)


async def port_details(
    session: AsyncSession, fips: Iterable[FloatingIp]
) -> dict[str, dict[str, Any]]:
    """``port_details`` of each associated port, keyed by port id: one query for a list."""
    ids = sorted({f.fixed_port_id for f in fips if f.fixed_port_id})
    if not ids:
        return {}
    columns = [getattr(Port, key) for key in PORT_DETAILS]
    rows = await session.execute(select(Port.id, *columns).where(Port.id.in_(ids)))
    return {row[0]: dict(zip(PORT_DETAILS, row[1:], strict=True)) for row in rows}


def view(
    fip: FloatingIp,
    _ctx: RequestContext | None = None,
    details: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The API view; ``details`` (from ``port_details``) fills ``port_details``."""
    associated = fip.fixed_port_id is not None
    return {
        "id": fip.id,
        "project_id": fip.project_id,
        "tenant_id": fip.project_id,
        "description": fip.description,
        "tags": sorted(fip.tags or []),
        "created_at": iso(fip.created_at),
        "updated_at": iso(fip.updated_at),
        "revision_number": fip.revision_number,
        "floating_ip_address": fip.floating_ip_address,
        "floating_network_id": fip.floating_network_id,
        "router_id": fip.router_id if associated else None,
        "port_id": fip.fixed_port_id,
        "fixed_ip_address": fip.fixed_ip_address if associated else None,
        "status": status(fip),
        "port_details": (details or {}).get(fip.fixed_port_id or "") if associated else None,
        "dns_name": "",
        "dns_domain": "",
        "qos_policy_id": None,
        "port_forwardings": [],
    }


def visible(ctx: RequestContext) -> Any:
    query = select(FloatingIp).order_by(FloatingIp.created_at, FloatingIp.id)
    return query if ctx.is_admin else query.where(FloatingIp.project_id == ctx.project_id)


async def get(session: AsyncSession, ctx: RequestContext, fip_id: str) -> FloatingIp:
    fip = (await session.scalars(visible(ctx).where(FloatingIp.id == fip_id))).first()
    if fip is None:
        raise not_found("FloatingIP", fip_id)
    return fip


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[FloatingIp]:
    return list(await session.scalars(visible(ctx)))


async def _router_for(
    session: AsyncSession, fip: FloatingIp, subnet_id: str, port_id: str
) -> Router:
    router = (
        await session.scalars(
            select(Router)
            .join(RouterPort, RouterPort.router_id == Router.id)
            .where(
                RouterPort.subnet_id == subnet_id,
                Router.gw_network_id == fip.floating_network_id,
            )
            .order_by(Router.created_at, Router.id)
            .with_for_update()  # an interface removal waits for this association
        )
    ).first()
    if router is None:
        raise not_found_gateway(subnet_id, fip.floating_network_id, port_id)
    return router


def not_found_gateway(subnet_id: str, network_id: str, port_id: str) -> NotFound:
    return NotFound(  # Neutron's text, its two spaces included
        f"External network {network_id} is not reachable from subnet {subnet_id}.  "
        f"Therefore, cannot associate Port {port_id} with a Floating IP.",
        details={"type": "ExternalGatewayForFloatingIPNotFound"},
    )


def _fixed_ip(port: Port, requested: Any) -> IpAllocation:
    v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
    if requested is not None:
        addr = subnet_attrs.address(requested)
        if addr is None:
            raise bad_attribute("fixed_ip_address", subnet_attrs.not_an_address(requested))
        if addr.version != 4:
            raise bad_request(
                "floatingip",
                f"Cannot process floating IP association with {requested}, since that is "
                "not an IPv4 address",
            )
        match = [a for a in v4 if a.ip_address == str(addr)]  # stored canonical
        if not match:
            raise bad_request("floatingip", f"Port {port.id} does not have fixed ip {requested}")
        return match[0]
    if not v4:
        raise bad_request(
            "floatingip",
            f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses",
        )
    if len(v4) > 1:
        raise bad_request(  # Neutron's text, its two spaces included
            "floatingip",
            f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific "
            "IPv4 address when assigning a floating IP",
        )
    return v4[0]


async def _mark_router(session: AsyncSession, router_id: str | None) -> None:
    if router_id is None:
        return
    router = await session.get(Router, router_id)
    if router is not None:
        changes.mark_router(session, router)


async def _associate(
    session: AsyncSession, ctx: RequestContext, fip: FloatingIp, port_id: Any, fixed: Any
) -> None:
    """Point ``fip`` at a port's fixed IP (``port_id`` None: disassociate)."""
    old_router = fip.router_id
    target: tuple[str | None, str | None, str | None] = (None, None, None)
    if port_id is not None:
        port = await port_rows.get(session, ctx, str(port_id))
        if port.project_id != fip.project_id and not ctx.is_admin:
            raise not_found("Port", port.id)
        if port.device_owner.startswith("network:"):
            reason = f"Port {port.id} is unable to be assigned a floating IP"
            raise bad_request("floatingip", reason)
        address = _fixed_ip(port, fixed)
        router = await _router_for(session, fip, address.subnet_id, port.id)
        target = (port.id, address.ip_address, router.id)
        changes.mark_router(session, router)
    await session.flush()
    # read now: a refused savepoint expires the row's attributes
    shown = (fip.floating_ip_address, fip_id_of(fip), fip.floating_network_id)
    try:
        # the (fixed port, fixed IP) key settles two associations racing for one address
        async with session.begin_nested():
            fip.fixed_port_id, fip.fixed_ip_address, fip.router_id = target
            await session.flush()
    except IntegrityError:
        raise conflict(
            "FloatingIPPortAlreadyAssociated",
            f"Cannot associate floating IP {shown[0]} ({shown[1]}) with port {target[0]} "
            f"using fixed IP {target[1]}, as that fixed IP already has a floating IP on "
            f"external network {shown[2]}.",
        ) from None
    if old_router != fip.router_id:
        await _mark_router(session, old_router)


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> FloatingIp:
    if not body.get("floating_network_id"):
        raise required("floating_network_id")
    network_id = uuid_attr(body, "floating_network_id")
    if body.get("port_id") is not None:
        uuid_attr(body, "port_id")
    policy.enforce(ctx, "create", "floatingip", body)
    network = await networks.get(session, ctx, network_id)
    if not network.external:
        raise invalid(
            f"Bad floatingip request: Network {network_id} is not a valid external network.",
            "BadRequest",
        )
    fip = FloatingIp(
        id=new_id(),
        project_id=owner_of(ctx, body),
        description=text(body, "description"),
        floating_network_id=network.id,
    )
    port = await routers.new_port(
        session, ctx, network, project_id="", device_id=fip.id, device_owner=port_rows.FLOATINGIP
    )
    held = await _allocate(session, network, port, body)
    fip.floating_subnet_id, fip.floating_ip_address = held.subnet_id, held.ip_address
    fip.floating_port_id = port.id
    session.add(fip)
    await session.flush()
    await quotas.reserve(session, settings, fip.project_id, "floatingip")
    await routers.announce_port(session, ctx, port, events.CREATE)
    if body.get("port_id") is not None:
        await _associate(session, ctx, fip, body["port_id"], body.get("fixed_ip_address"))
    elif body.get("fixed_ip_address") is not None:
        raise without_port()
    await session.flush()
    await emit(session, ctx, fip, events.CREATE)
    return fip


def without_port() -> Invalid:
    return bad_request("floatingip", "fixed_ip_address cannot be specified without a port_id")


async def _allocate(
    session: AsyncSession, network: Any, port: Port, body: dict[str, Any]
) -> IpAllocation:
    subnets = [s for s in network.subnets if s.ip_version == 4]
    wanted_subnet, address = body.get("subnet_id"), body.get("floating_ip_address")
    if wanted_subnet:
        subnets = [s for s in subnets if s.id == wanted_subnet]
        if not subnets:
            raise invalid_input(
                f"Failed to create port on network {network.id}, because fixed_ips "
                f"included invalid subnet {wanted_subnet}"
            )
    if address is not None:
        addr = subnet_attrs.address(address)
        if addr is None:
            raise bad_attribute("floating_ip_address", subnet_attrs.not_an_address(address))
        address = str(addr)  # canonical
        subnets = [s for s in subnets if addr in ipaddress.ip_network(s.cidr)]
        if not subnets:
            raise invalid(
                f"IP address {address} is not a valid IP for any of the subnets on the "
                "specified network.",
                "InvalidIpForNetwork",
            )
    if not subnets:
        raise bad_request("floatingip", f"Network {network.id} does not contain any IPv4 subnet")
    for index, subnet in enumerate(subnets):
        try:
            return await ipam.allocate(session, subnet, port.id, address)
        except Conflict:  # a full subnet: the next one may have room
            if index == len(subnets) - 1:
                raise
    raise AssertionError("unreachable")


async def update(
    session: AsyncSession, ctx: RequestContext, fip_id: str, body: dict[str, Any]
) -> FloatingIp:
    fip = await get(session, ctx, fip_id)
    for key in ("floating_network_id", "floating_ip_address", "subnet_id"):
        if key in body:
            raise read_only(key)
    if body.get("port_id") is not None:
        uuid_attr(body, "port_id")
    policy.enforce(ctx, "update", "floatingip", body)
    if "description" in body:
        fip.description = text(body, "description")
    if "port_id" in body:
        await _associate(session, ctx, fip, body["port_id"], body.get("fixed_ip_address"))
    elif "fixed_ip_address" in body:
        raise without_port()
    fip.updated_at = utcnow()
    fip.revision_number += 1
    await session.flush()
    await emit(session, ctx, fip, events.UPDATE)
    return fip


async def remove(session: AsyncSession, ctx: RequestContext, fip_id: str) -> None:
    fip = await get(session, ctx, fip_id)
    await _mark_router(session, fip.router_id if fip.fixed_port_id else None)
    port = await session.get(Port, fip.floating_port_id)
    await session.delete(fip)
    await quotas.release(session, fip.project_id, "floatingip")
    await session.flush()
    if port is not None:
        await routers.drop_port(session, ctx, port)
    await emit(session, ctx, fip, events.DELETE)


def _orphaned() -> Any:
    return (FloatingIp.fixed_port_id.is_(None), FloatingIp.router_id.is_not(None))


async def has_orphans(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(*_orphaned()))))


async def release_orphans(session: AsyncSession) -> int:
    """Floating IPs whose port was deleted (the key went NULL): drop their mapping.

    Their routers are marked changed, so the caller pushes NAT without the old fixed IP
    before the address can go to another port.
    """
    rows = await session.scalars(
        select(FloatingIp).where(*_orphaned()).order_by(FloatingIp.id).with_for_update()
    )
    released = 0
    for fip in list(rows):
        await _mark_router(session, fip.router_id)
        fip.router_id = fip.fixed_ip_address = None
        fip.updated_at = utcnow()
        fip.revision_number += 1
        await session.flush()
        await emit(session, None, fip, events.UPDATE)
        released += 1
    return released


async def emit(
    session: AsyncSession, ctx: RequestContext | None, fip: FloatingIp, action: str
) -> None:
    shown = view(fip)
    payload = FloatingIpPayload(
        id=fip.id,
        project_id=fip.project_id,
        floating_network_id=fip.floating_network_id,
        floating_ip_address=fip.floating_ip_address,
        status=shown["status"],
        port_id=shown["port_id"],
        fixed_ip_address=shown["fixed_ip_address"],
        router_id=shown["router_id"],
        revision_number=fip.revision_number,
    )
    await add_event(
        session, FLOATINGIP.format(action=action), payload, project_id=fip.project_id, ctx=ctx
    )
