"""Subnets: CIDR, gateway and pool validation; no overlap inside one network."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import SubnetPayload
from common_rpc.outbox import add_event

from .. import events
from ..db.models import IpAllocation, Network, Subnet
from ..settings import NetworkSettings
from . import dhcp, ipam, networks, quotas, routers
from .common import flag, new_id, owns, standard_view, text, touch
from .errors import conflict, forbidden, invalid, not_found


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


def _nameservers(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise invalid("Invalid input for dns_nameservers: expected a list.")
    try:
        return [str(ipaddress.ip_address(str(v))) for v in value]
    except ValueError:
        raise invalid("Invalid input for dns_nameservers.") from None


def _routes(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid("Invalid input for host_routes: expected a list.")
    out = []
    for route in value:
        try:
            out.append(
                {
                    "destination": str(ipaddress.ip_network(route["destination"])),
                    "nexthop": str(ipaddress.ip_address(route["nexthop"])),
                }
            )
        except (KeyError, TypeError, ValueError):
            raise invalid("Invalid input for host_routes.") from None
    return out


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> Subnet:
    network_id = str(body.get("network_id") or "")
    if not network_id:
        raise invalid("Invalid input for network_id: required.")
    # Lock the network row (PostgreSQL) so two overlapping subnets cannot both pass the check.
    network = (
        await session.scalars(
            networks.visible(ctx).where(Network.id == network_id).with_for_update()
        )
    ).first()
    if network is None:
        raise not_found("Network", network_id)
    if not owns(ctx, network.project_id):
        raise forbidden("Only the network's owner may add subnets to it.")
    version = body.get("ip_version", 4)
    if version not in (4, 6):
        raise invalid("Invalid input for ip_version: 4 or 6.")
    net = ipam.parse_cidr(body.get("cidr"), version)
    gateway: str | None
    if "gateway_ip" not in body:
        gateway = ipam.default_gateway(net)
    elif body["gateway_ip"] is None:
        gateway = None
    else:
        gateway = str(ipam.parse_ip(body["gateway_ip"], net, "gateway_ip"))
    if body.get("allocation_pools"):
        pools = ipam.check_pools(net, body["allocation_pools"], gateway)
    else:
        pools = ipam.default_pools(net, gateway)
    for other in network.subnets:
        if ipaddress.ip_network(other.cidr).overlaps(net):
            raise invalid(
                f"Requested subnet with cidr: {net} for network: {network_id} overlaps "
                f"with another subnet."
            )
    subnet = Subnet(
        id=new_id(),
        project_id=network.project_id,
        network_id=network_id,
        name=text(body, "name"),
        description=text(body, "description"),
        ip_version=version,
        cidr=str(net),
        gateway_ip=gateway,
        enable_dhcp=flag(body, "enable_dhcp", True),
        allocation_pools=pools,
        dns_nameservers=_nameservers(body.get("dns_nameservers") or []),
        host_routes=_routes(body.get("host_routes") or []),
    )
    session.add(subnet)
    await session.flush()
    await quotas.reserve(session, settings, subnet.project_id, "subnet")
    await emit(session, ctx, subnet, events.CREATE)
    await dhcp.ensure_address(session, ctx, subnet)
    return subnet


async def update(
    session: AsyncSession, ctx: RequestContext, subnet_id: str, body: dict[str, Any]
) -> Subnet:
    subnet = await get(session, ctx, subnet_id)
    if not owns(ctx, subnet.project_id):
        raise forbidden("Only the subnet's owner may change it.")
    for key in ("cidr", "network_id", "ip_version", "allocation_pools", "gateway_ip"):
        if key in body:
            raise invalid(f"Cannot update read-only attribute {key}.")
    if "name" in body:
        subnet.name = text(body, "name")
    if "description" in body:
        subnet.description = text(body, "description")
    if "enable_dhcp" in body:
        subnet.enable_dhcp = flag(body, "enable_dhcp", subnet.enable_dhcp)
        if dhcp.serves(subnet):
            await dhcp.ensure_address(session, ctx, subnet)
        else:
            await dhcp.release_address(session, ctx, subnet)
    if "dns_nameservers" in body:
        subnet.dns_nameservers = _nameservers(body["dns_nameservers"] or [])
    if "host_routes" in body:
        subnet.host_routes = _routes(body["host_routes"] or [])
    touch(subnet)
    await session.flush()
    await emit(session, ctx, subnet, events.UPDATE)
    return subnet


async def remove(session: AsyncSession, ctx: RequestContext, subnet_id: str) -> None:
    subnet = await get(session, ctx, subnet_id)
    if not owns(ctx, subnet.project_id):
        raise forbidden("Only the subnet's owner may delete it.")
    in_use = conflict(
        "SubnetInUse",
        f"Unable to complete operation on subnet {subnet_id}: "
        "one or more ports have an IP allocation from this subnet.",
    )
    await routers.check_subnet_unused(session, subnet_id)
    # Its network's row first, then the subnet's quota before the DHCP port's: the order
    # subnets.create takes them in (a refusal below rolls the release back).
    network = select(Network.id).where(Network.id == subnet.network_id).with_for_update()
    await session.execute(network)
    await quotas.release(session, subnet.project_id, "subnet")
    await dhcp.release_address(session, ctx, subnet)
    if await session.scalar(select(exists().where(IpAllocation.subnet_id == subnet_id))):
        raise in_use
    try:
        async with session.begin_nested():
            await session.delete(subnet)
    except IntegrityError:
        # An address allocated meanwhile holds the subnet: its foreign key refuses the delete.
        raise in_use from None
    await emit(session, ctx, subnet, events.DELETE)


async def emit(session: AsyncSession, ctx: RequestContext, subnet: Subnet, action: str) -> None:
    payload = SubnetPayload(
        id=subnet.id,
        project_id=subnet.project_id,
        network_id=subnet.network_id,
        name=subnet.name,
        cidr=subnet.cidr,
        ip_version=subnet.ip_version,
        gateway_ip=subnet.gateway_ip,
        enable_dhcp=subnet.enable_dhcp,
    )
    await add_event(
        session, events.SUBNET.format(action=action), payload, project_id=subnet.project_id, ctx=ctx
    )
