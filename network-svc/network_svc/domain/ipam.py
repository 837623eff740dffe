"""Address math for subnets; uniqueness is the database's job (``ip_allocations`` key).

>>> default_pools(ipaddress.ip_network("10.0.0.0/29"), "10.0.0.1")
[{'start': '10.0.0.2', 'end': '10.0.0.6'}]
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from ..db.models import IpAllocation, Subnet
from .common import try_insert
from .errors import conflict, invalid

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address

# Pools up to this size are enumerated exactly; larger ones (IPv6) are sampled.
ENUMERATE_LIMIT = 1 << 16
MAX_ATTEMPTS = 200
# Random tries before the allocator reads which addresses are taken.
RANDOM_PROBES = 8


def parse_cidr(cidr: Any, ip_version: int) -> Net:
    try:
        net = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError:
        raise invalid(f"Invalid input for cidr: {cidr!r} is not a valid CIDR.") from None
    if net.version != ip_version:
        raise invalid(f"Invalid input for cidr: {cidr} is not an IPv{ip_version} network.")
    if net.num_addresses < (4 if net.version == 4 else 2):
        raise invalid(f"Invalid input for cidr: {cidr} is too small.")
    return net


def host_bounds(net: Net) -> tuple[int, int]:
    """First and last usable addresses as integers (IPv4 skips network and broadcast)."""
    if net.version == 4:
        return int(net.network_address) + 1, int(net.broadcast_address) - 1
    return int(net.network_address) + 1, int(net.broadcast_address)


def parse_ip(value: Any, net: Net, what: str) -> Addr:
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError:
        raise invalid(f"Invalid input for {what}: {value!r} is not an IP address.") from None
    low, high = host_bounds(net)
    if addr.version != net.version or not low <= int(addr) <= high:
        raise invalid(f"Invalid input for {what}: {value} is not a host address of {net}.")
    return addr


def default_gateway(net: Net) -> str:
    return str(ipaddress.ip_address(host_bounds(net)[0]))


def _ranges(low: int, high: int, hole: int | None) -> list[tuple[int, int]]:
    if hole is None or not low <= hole <= high:
        return [(low, high)] if low <= high else []
    return [(a, b) for a, b in ((low, hole - 1), (hole + 1, high)) if a <= b]


def default_pools(net: Net, gateway: str | None) -> list[dict[str, str]]:
    hole = int(ipaddress.ip_address(gateway)) if gateway else None
    return [
        {"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))}
        for a, b in _ranges(*host_bounds(net), hole)
    ]


def check_pools(net: Net, pools: Any, gateway: str | None) -> list[dict[str, str]]:
    """Pools inside the subnet's hosts, disjoint, and clear of the gateway."""
    if not isinstance(pools, list):
        raise invalid("Invalid input for allocation_pools: expected a list.")
    spans: list[tuple[int, int]] = []
    for pool in pools:
        if not isinstance(pool, dict) or "start" not in pool or "end" not in pool:
            raise invalid("Invalid input for allocation_pools: each needs start and end.")
        start = int(parse_ip(pool["start"], net, "allocation_pools"))
        end = int(parse_ip(pool["end"], net, "allocation_pools"))
        if start > end:
            raise invalid(f"Allocation pool {pool['start']}-{pool['end']} is reversed.")
        spans.append((start, end))
    spans.sort()
    for (_, prev_end), (start, _) in itertools.pairwise(spans):
        if start <= prev_end:
            raise invalid("Allocation pools overlap.", "OverlappingAllocationPools")
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        if any(a <= gw <= b for a, b in spans):
            raise invalid(
                f"Gateway ip {gateway} conflicts with allocation pool.",
                "GatewayConflictWithAllocationPools",
            )
    return [
        {"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))}
        for a, b in spans
    ]


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
        addr = str(parse_ip(ip_address, net, "fixed_ips"))
        if addr == subnet.gateway_ip:
            raise invalid(f"IP address {addr} is the gateway of subnet {subnet.id}.")
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
