"""Address math for subnets; uniqueness is the database's job (``ip_allocations`` key).

>>> default_gateway(ipaddress.ip_network("2001:db8::/64"))
'2001:db8::1'
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from ..db.models import IpAllocation, Subnet
from . import subnet_attrs
from .common import try_insert
from .errors import bad_attribute, conflict, invalid

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address

# Pools up to this size are enumerated exactly; larger ones (IPv6) are sampled.
ENUMERATE_LIMIT = 1 << 16
MAX_ATTEMPTS = 200
# Random tries before the allocator reads which addresses are taken.
RANDOM_PROBES = 8


def host_bounds(net: Net) -> tuple[int, int]:
    return subnet_attrs.host_bounds(net)


def fixed_ip(value: Any, net: Net) -> Addr:
    """A requested fixed IP of a subnet: any address of the subnet but its network
    (and, for IPv4, broadcast) address, as Neutron's ``check_subnet_ip`` allows."""
    addr = subnet_attrs.address(value)
    if addr is None:
        raise bad_attribute("fixed_ips", subnet_attrs.not_an_address(value))
    low, high = host_bounds(net)
    if addr.version != net.version or not low <= int(addr) <= high:
        raise invalid(
            f"IP address {value} is not a valid IP for the specified subnet.",
            "InvalidIpForSubnet",
        )
    return addr


def default_gateway(net: Net) -> str:
    return str(ipaddress.ip_address(host_bounds(net)[0]))


def _spans(subnet: Subnet) -> list[tuple[int, int]]:
    return [
        (int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
        for p in subnet.allocation_pools
    ]


def pick_free(
    subnet: Subnet, used: set[int], *, enumerate_limit: int = ENUMERATE_LIMIT
) -> int | None:
    """A random free address of the pools, or None when they are full."""
    spans = _spans(subnet)
    size = sum(b - a + 1 for a, b in spans)
    if size <= enumerate_limit:
        free = [i for a, b in spans for i in range(a, b + 1) if i not in used]
        return random.choice(free) if free else None
    for _ in range(64):
        a, b = random.choice(spans)
        candidate = random.randint(a, b)
        if candidate not in used:
            return candidate
    return None


def lowest_free(subnet: Subnet, used: set[int]) -> int | None:
    for a, b in sorted(_spans(subnet)):
        for candidate in range(a, b + 1):
            if candidate not in used:
                return candidate
    return None


async def allocate(
    session: AsyncSession,
    subnet: Subnet,
    port_id: str,
    ip_address: Any = None,
    *,
    first_free: bool = False,
) -> IpAllocation:
    """Hold an address of ``subnet`` for ``port_id``: the one asked for, or a free one.

    A free one is random (parallel creates rarely collide), or with ``first_free`` the
    lowest of the pools (the DHCP port's, where operators expect it).
    """
    net = ipaddress.ip_network(subnet.cidr)
    if ip_address is not None:
        addr = str(fixed_ip(ip_address, net))
        row = IpAllocation(
            subnet_id=subnet.id, ip_address=addr, port_id=port_id, network_id=subnet.network_id
        )
        if not await try_insert(session, row):
            raise conflict(
                "IpAddressAlreadyAllocated",
                f"IP address {addr} already allocated in subnet {subnet.id}",
            )
        return row
    for attempt in range(MAX_ATTEMPTS):
        if attempt < RANDOM_PROBES and not first_free:
            # Most pools are mostly free: a random address usually fits, with no query.
            candidate = pick_free(subnet, set(), enumerate_limit=0)
        else:
            taken = await session.scalars(
                select(IpAllocation.ip_address).where(IpAllocation.subnet_id == subnet.id)
            )
            used = {int(ipaddress.ip_address(ip)) for ip in taken}
            candidate = lowest_free(subnet, used) if first_free else pick_free(subnet, used)
        if candidate is None:
            break
        row = IpAllocation(
            subnet_id=subnet.id,
            ip_address=str(ipaddress.ip_address(candidate)),
            port_id=port_id,
            network_id=subnet.network_id,
        )
        if identity_key(IpAllocation, (subnet.id, row.ip_address)) in session.identity_map:
            continue  # this transaction already holds it (a bulk create): no round trip
        # Another request may take the same address first: the key refuses it, we retry.
        if await try_insert(session, row):
            return row
    raise conflict(
        "IpAddressGenerationFailure",
        f"No more IP addresses available on network {subnet.network_id}.",
    )
