"""The DHCP port: one per network, holding dnsmasq's address on each DHCP subnet.

The address is allocated by IPAM like any other port's (the first free one of the pool,
as Neutron's DHCP agent takes), so no guest can be handed the DHCP server's address.
The port comes with the first DHCP subnet and goes with the last one, or with its
network; a tenant cannot delete it or move its addresses.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext

from ..db.models import IpAllocation, Network, Port, Subnet
from ..settings import NetworkSettings
from . import ipam, quotas, scheduling
from .changes import bump_generation
from .common import new_id
from .events import CREATE, UPDATE, port_event
from .port_rows import DHCP_OWNER, DHCP_SERVER, insert_with_mac, reload, remove_row

DEVICE_OWNER = DHCP_OWNER


def serves(subnet: Subnet) -> bool:
    """dnsmasq here answers DHCPv4 only."""
    return subnet.enable_dhcp and subnet.ip_version == 4


async def port_of(session: AsyncSession, network_id: str) -> Port | None:
    query = select(Port).where(Port.network_id == network_id, DHCP_SERVER)
    return (await session.scalars(query.order_by(Port.created_at))).first()


async def ensure_address(
    session: AsyncSession,
    ctx: RequestContext,
    subnet: Subnet,
    settings: NetworkSettings | None = None,
) -> None:
    """Give the network's DHCP port (made on first need) an address on ``subnet``.

    A new port is bound to the network node scheduled for it (``settings``' network
    nodes); unbound (no network nodes), every host serving the network runs DHCP.
    """
    if not serves(subnet):
        return
    port = await port_of(session, subnet.network_id)
    if port is None:
        network = (
            await session.scalars(select(Network).where(Network.id == subnet.network_id))
        ).one()
        hints = network.availability_zone_hints or ()
        host = await scheduling.network_node(session, settings, "dhcp", hints) if settings else ""
        port = Port(
            id=new_id(),
            project_id=network.project_id,
            network_id=network.id,
            name="",
            description="DHCP server of the network",
            admin_state_up=True,
            status="ACTIVE",
            device_id=f"dhcp-{network.id}",
            device_owner=DEVICE_OWNER,
            host_id=host,
            # Lives in the agent's namespace, not behind a tenant's firewall chain.
            port_security_enabled=False,
            service_owned=True,
        )
        await insert_with_mac(session, port)
        await quotas.record(session, port.project_id, "port")  # counted, never refused
        await ipam.allocate(session, subnet, port.id, first_free=True)
        await bump_generation(session, "networks", network.id)
        await port_event(session, ctx, await reload(session, port), CREATE)
        return
    held = await session.scalar(
        select(IpAllocation.ip_address).where(
            IpAllocation.port_id == port.id, IpAllocation.subnet_id == subnet.id
        )
    )
    if held is None:
        await ipam.allocate(session, subnet, port.id, first_free=True)
        await bump_generation(session, "networks", subnet.network_id)
        await port_event(session, ctx, await reload(session, port), UPDATE)


async def release_address(session: AsyncSession, ctx: RequestContext, subnet: Subnet) -> None:
    """Free the DHCP port's address on ``subnet``; the port goes with its last address."""
    port = await port_of(session, subnet.network_id)
    if port is None:
        return
    await session.execute(
        delete(IpAllocation).where(
            IpAllocation.port_id == port.id, IpAllocation.subnet_id == subnet.id
        )
    )
    await bump_generation(session, "networks", subnet.network_id)
    left = await session.scalar(
        select(IpAllocation.ip_address).where(IpAllocation.port_id == port.id)
    )
    if left is None:
        await remove_row(session, ctx, port)
    else:
        await port_event(session, ctx, await reload(session, port), UPDATE)


async def remove_port(session: AsyncSession, ctx: RequestContext, network_id: str) -> None:
    """The network is going: its DHCP port goes first."""
    port = await port_of(session, network_id)
    if port is not None:
        await remove_row(session, ctx, port)
