"""Subnets: Neutron's checks (``subnet_attrs``), no overlap inside one network, updates
of the gateway, pools, DNS servers, host routes and DHCP that the hosts then follow.

A change the data plane sees (gateway, DNS servers, host routes, DHCP on or off) moves
its network's generation and is noted (``changes.networks``; routers whose gateway's
next hop moved in ``changes.routers``) so the caller pushes the network's state to its
hosts once the transaction committed.

    subnet = await update(session, ctx, subnet_id, {"gateway_ip": "10.0.0.254"})
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import Conflict

from ..db.models import IpAllocation, Network, Port, Router, RouterPort, Subnet
from ..settings import NetworkSettings
from . import changes, dhcp, events, ipam, networks, quotas, subnet_attrs
from .common import flag, new_id, owns, standard_view, text, touch, uuid_attr
from .errors import (
    bad_request,
    conflict,
    invalid_input,
    not_found,
    policy_denied,
    read_only,
    required,
)
from .events import subnet_event
from .port_rows import GATEWAY, INTERFACE

# What a subnet update may not change (Neutron's allow_put False).
READ_ONLY = (
    "id",
    "network_id",
    "ip_version",
    "cidr",
    "subnetpool_id",
    "prefixlen",
    "project_id",
    "tenant_id",
    "ipv6_ra_mode",
    "ipv6_address_mode",
)
# What dnsmasq (and a router's default route) is made of.
DATA_PLANE = ("gateway_ip", "dns_nameservers", "host_routes", "enable_dhcp")


def view(subnet: Subnet, _ctx: RequestContext | None = None) -> dict[str, Any]:
    return standard_view(subnet) | {
        "network_id": subnet.network_id,
        "cidr": subnet.cidr,
        "ip_version": subnet.ip_version,
        "gateway_ip": subnet.gateway_ip,
        "allocation_pools": subnet.allocation_pools,
        "enable_dhcp": subnet.enable_dhcp,
        "dns_nameservers": subnet.dns_nameservers,
        "host_routes": subnet.host_routes,
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "service_types": [],
    }


def visible(ctx: RequestContext) -> Any:
    """Neutron's ``get_subnet`` rule: the owner's, or on a shared network. An external
    network is visible to all, its subnets are not (we do not offer Neutron's
    ``subnet-external-network``)."""
    query = select(Subnet).order_by(Subnet.created_at, Subnet.id)
    if not ctx.is_admin:
        query = query.join(Network, Network.id == Subnet.network_id).where(
            or_(Subnet.project_id == ctx.project_id, Network.shared)
        )
    return query


async def get(session: AsyncSession, ctx: RequestContext, subnet_id: str) -> Subnet:
    subnet = (await session.scalars(visible(ctx).where(Subnet.id == subnet_id))).first()
    if subnet is None:
        raise not_found("Subnet", subnet_id)
    return subnet


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[Subnet]:
    return list(await session.scalars(visible(ctx)))


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> Subnet:
    if not body.get("network_id"):
        raise required("network_id")
    network_id = uuid_attr(body, "network_id")
    version = subnet_attrs.ip_version(body.get("ip_version", 4))
    if body.get("cidr") is None:
        raise bad_request("subnets", "a subnetpool must be specified in the absence of a cidr")
    enable_dhcp = flag(body, "enable_dhcp", True)
    net = subnet_attrs.cidr(body["cidr"], version, enable_dhcp=enable_dhcp)
    if "gateway_ip" in body:
        gateway = subnet_attrs.gateway_ip(body["gateway_ip"], net)
    else:
        gateway = ipam.default_gateway(net)
    if body.get("allocation_pools") is not None:
        spans = subnet_attrs.pools(net, body["allocation_pools"])
    else:
        spans = subnet_attrs.default_pools(net, gateway)
    dns = subnet_attrs.nameservers(body.get("dns_nameservers"), version, None)
    routes = subnet_attrs.host_routes(body.get("host_routes"), version, None)
    name, description = text(body, "name"), text(body, "description")
    # Lock the network row (PostgreSQL) so two overlapping subnets cannot both pass the check.
    network = (
        await session.scalars(
            networks.visible(ctx).where(Network.id == network_id).with_for_update()
        )
    ).first()
    if network is None:
        raise not_found("Network", network_id)
    if not owns(ctx, network.project_id):
        raise policy_denied("create_subnet")
    subnet_attrs.gateway_out_of_pools(gateway, spans, net)
    for other in network.subnets:
        if ipaddress.ip_network(other.cidr).overlaps(net):
            raise invalid_input(
                f"Requested subnet with cidr: {net} for network: {network_id} overlaps "
                "with another subnet"
            )
    subnet = Subnet(
        id=new_id(),
        project_id=network.project_id,
        network_id=network_id,
        name=name,
        description=description,
        ip_version=version,
        cidr=str(net),
        gateway_ip=gateway,
        enable_dhcp=enable_dhcp,
        allocation_pools=subnet_attrs.pool_dicts(spans, net),
        dns_nameservers=dns,
        host_routes=routes,
    )
    session.add(subnet)
    await session.flush()
    await quotas.reserve(session, settings, subnet.project_id, "subnet")
    await subnet_event(session, ctx, subnet, events.CREATE)
    await dhcp.ensure_address(session, ctx, subnet, settings)
    await changes.network_changed(session, subnet.network_id)
    return subnet


async def update(
    session: AsyncSession,
    ctx: RequestContext,
    subnet_id: str,
    body: dict[str, Any],
    settings: NetworkSettings | None = None,
) -> Subnet:
    """Neutron's updatable attributes, checked as Neutron checks them: the gateway a
    router interface holds cannot move (``GatewayIpInUse``), and the gateway stays out
    of the pools (``GatewayConflictWithAllocationPools``). Addresses already held
    outside new pools stay held, as in Neutron."""
    for key in READ_ONLY:
        if key in body:
            raise read_only(key)
    subnet = await get(session, ctx, subnet_id)
    # Its row locked (PostgreSQL): a router interface added meanwhile takes the gateway
    # this update checks, or waits for the new one (routers.add_interface locks it too).
    await session.refresh(subnet, with_for_update=True)
    net = ipaddress.ip_network(subnet.cidr)
    gateway = subnet.gateway_ip
    if "gateway_ip" in body:
        gateway = subnet_attrs.gateway_ip(body["gateway_ip"], net)
    spans = None
    if body.get("allocation_pools") is not None:
        spans = subnet_attrs.pools(net, body["allocation_pools"])
    dns, routes = subnet.dns_nameservers, subnet.host_routes
    if "dns_nameservers" in body:
        dns = subnet_attrs.nameservers(body["dns_nameservers"], subnet.ip_version, subnet.id)
    if "host_routes" in body:
        routes = subnet_attrs.host_routes(body["host_routes"], subnet.ip_version, subnet.id)
    enable_dhcp = flag(body, "enable_dhcp", subnet.enable_dhcp)
    name = text(body, "name") if "name" in body else subnet.name
    description = text(body, "description") if "description" in body else subnet.description
    if not owns(ctx, subnet.project_id):
        raise policy_denied("update_subnet")
    if gateway != subnet.gateway_ip:
        await _check_gateway_unused(session, subnet)
    if gateway != subnet.gateway_ip or spans is not None:
        current = [
            (int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
            for p in subnet.allocation_pools
        ]
        subnet_attrs.gateway_out_of_pools(gateway, current if spans is None else spans, net)
    if gateway != subnet.gateway_ip:
        # Routers whose gateway port is on this subnet route by its gateway: new next hop.
        for router in await session.scalars(
            select(Router)
            .join(IpAllocation, IpAllocation.port_id == Router.gw_port_id)
            .where(IpAllocation.subnet_id == subnet.id)
        ):
            changes.mark_router(session, router)
    subnet.name, subnet.description, subnet.gateway_ip = name, description, gateway
    if spans is not None:
        subnet.allocation_pools = subnet_attrs.pool_dicts(spans, net)
    subnet.dns_nameservers, subnet.host_routes = dns, routes
    if enable_dhcp != subnet.enable_dhcp:
        subnet.enable_dhcp = enable_dhcp
        # The DHCP port takes or gives back its address on the subnet (and goes with
        # the network's last DHCP subnet), as Neutron's DHCP agent does.
        if dhcp.serves(subnet):
            await dhcp.ensure_address(session, ctx, subnet, settings)
        else:
            await dhcp.release_address(session, ctx, subnet)
    touch(subnet)
    await session.flush()
    if any(key in body for key in DATA_PLANE):
        await changes.network_changed(session, subnet.network_id)
    await subnet_event(session, ctx, subnet, events.UPDATE)
    return subnet


async def _check_gateway_unused(session: AsyncSession, subnet: Subnet) -> None:
    """409 ``GatewayIpInUse`` while a router port holds the current gateway address."""
    if subnet.gateway_ip is None:
        return
    holder = await session.scalar(
        select(IpAllocation.port_id)
        .join(Port, Port.id == IpAllocation.port_id)
        .where(
            IpAllocation.subnet_id == subnet.id,
            IpAllocation.ip_address == subnet.gateway_ip,
            Port.device_owner.in_((INTERFACE, GATEWAY)),
        )
    )
    if holder is not None:
        raise conflict(
            "GatewayIpInUse",
            f"Current gateway ip {subnet.gateway_ip} already in use by port {holder}. "
            "Unable to update.",
        )


def in_use(subnet_id: str) -> Conflict:
    return conflict(
        "SubnetInUse",
        f"Unable to complete operation on subnet {subnet_id}: "
        "One or more ports have an IP allocation from this subnet.",
    )


async def remove(session: AsyncSession, ctx: RequestContext, subnet_id: str) -> None:
    subnet = await get(session, ctx, subnet_id)
    if not owns(ctx, subnet.project_id):
        raise policy_denied("delete_subnet")
    if await session.scalar(select(exists().where(RouterPort.subnet_id == subnet_id))):
        raise in_use(subnet_id)  # a router's interface port holds an address of it
    # Its network's row first, then the subnet's quota before the DHCP port's: the order
    # subnets.create takes them in (a refusal below rolls the release back).
    network = select(Network.id).where(Network.id == subnet.network_id).with_for_update()
    await session.execute(network)
    await quotas.release(session, subnet.project_id, "subnet")
    await dhcp.release_address(session, ctx, subnet)
    if await session.scalar(select(exists().where(IpAllocation.subnet_id == subnet_id))):
        raise in_use(subnet_id)
    try:
        async with session.begin_nested():
            await session.delete(subnet)
    except IntegrityError:
        # An address allocated meanwhile holds the subnet: its foreign key refuses the delete.
        raise in_use(subnet_id) from None
    await changes.network_changed(session, subnet.network_id)
    await subnet_event(session, ctx, subnet, events.DELETE)
