"""The port row as every module that finds, makes or removes a port needs it.

Ports are made by ``ports`` (a tenant's), ``dhcp`` (dnsmasq's), ``routers`` (legs and
gateways) and ``floatingips`` (the address holder); they share the owners, the MAC
rules, the lookup and the row's removal here, below all of them, so none of those
modules imports another for them.

    port = await get(session, ctx, port_id)                  # NotFound if not visible
    await insert_with_mac(session, Port(...))                # a MAC unique on its network
"""

from __future__ import annotations

import random
import re
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext

from ..db.models import FloatingIp, IpAllocation, Port, PortSecurityGroup, Router, RouterPort
from . import quotas
from .changes import bump_generation
from .common import UUID_LIKE, try_insert
from .errors import bad_attribute, conflict, not_found
from .events import DELETE, port_event

# dnsmasq's port (see ``dhcp``): made and removed with its subnets, never by hand.
DHCP_OWNER = "network:dhcp"
# A router's legs and a floating IP's address holder: they go with their router or FIP.
INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"
FLOATINGIP = "network:floatingip"
L3_OWNERS = frozenset({INTERFACE, GATEWAY, FLOATINGIP})

# The network's DHCP server: the cloud's own port (a tenant's ``network:dhcp`` port on
# its own network is only a port).
DHCP_SERVER = and_(Port.device_owner == DHCP_OWNER, Port.service_owned.is_(True))

MAC = re.compile(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$")
MAC_ATTEMPTS = 16
UUID = UUID_LIKE


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))


def mac_address(value: object) -> str:
    """A MAC a port may have, lower case with colons: unicast and not all zeros (a
    multicast or broadcast source address is dropped by every switch on the way)."""
    if not isinstance(value, str) or not MAC.match(value.lower()):
        raise bad_attribute("mac_address", f"'{value}' is not a valid MAC address")
    mac = value.lower().replace("-", ":")
    if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        raise bad_attribute("mac_address", f"'{value}' is not a valid unicast MAC address")
    return mac


async def held_by_service(session: AsyncSession, port: Port) -> bool:
    """Whether the port is one the cloud runs: its own (DHCP, gateway, floating IP
    holder), or a router's leg. Such a port goes with its subnet, router or floating IP;
    any other port, whatever its device_owner, its project may delete."""
    if port.service_owned:
        return True
    query = select(
        or_(
            exists().where(RouterPort.port_id == port.id),
            exists().where(Router.gw_port_id == port.id),
            exists().where(FloatingIp.floating_port_id == port.id),
        )
    )
    return bool(await session.scalar(query))


def bridge_name(network_id: str) -> str:
    """The Linux bridge of a network: ``brq`` + the first 11 hex digits of its id."""
    return "brq" + re.sub(r"[^0-9a-f]", "", network_id.lower())[:11]


def visible(ctx: RequestContext) -> Any:
    query = select(Port).order_by(Port.created_at, Port.id)
    return query if ctx.is_admin else query.where(Port.project_id == ctx.project_id)


async def get(session: AsyncSession, ctx: RequestContext, port_id: str) -> Port:
    port = (await session.scalars(visible(ctx).where(Port.id == port_id))).first()
    if port is None:
        raise not_found("Port", port_id)
    return port


async def reload(session: AsyncSession, port: Port) -> Port:
    await session.flush()
    await session.refresh(port, ["fixed_ips", "security_groups"])
    return port


async def insert_with_mac(session: AsyncSession, port: Port, mac: str | None = None) -> None:
    """Insert with a MAC no other port of the network has; the (network, mac) key decides."""
    for _ in range(MAC_ATTEMPTS if mac is None else 1):
        port.mac_address = mac or random_mac()
        if await try_insert(session, port):
            return
    if mac is not None:
        raise conflict(
            "MacAddressInUse",
            f"Unable to complete operation for network "
            f"{port.network_id}. The mac address {mac} is in use.",
        )
    raise conflict("MacAddressGenerationFailure", "Unable to generate a unique MAC address.")


async def delete_row(session: AsyncSession, port: Port) -> None:
    """Delete ``port`` with its addresses and group links (callers checked it may go)."""
    port_id = port.id
    await bump_generation(session, "networks", port.network_id)  # its DHCP hosts change
    # Addresses go back to the pool in the same transaction as the port.
    await session.execute(delete(IpAllocation).where(IpAllocation.port_id == port_id))
    await session.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port_id))
    await session.delete(port)
    await quotas.release(session, port.project_id, "port")
    await session.flush()


async def remove_row(session: AsyncSession, ctx: RequestContext, port: Port) -> None:
    """``delete_row``, then the port's delete event."""
    await delete_row(session, port)
    await port_event(session, ctx, port, DELETE)
