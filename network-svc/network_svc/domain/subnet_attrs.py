"""A subnet's attributes checked, and made canonical, as Neutron checks them.

Each refusal carries Neutron's fault type and text: first the API layer's attribute
checks (``Invalid input for dns_nameservers. Reason: ...``), then the plugin's
(``InvalidInput``, ``OutOfBoundsAllocationPool``, ``OverlappingAllocationPools`` ...).
Every address comes back canonical (RFC 5952 for IPv6), so what is stored, echoed and
filtered on has one spelling.

    net = cidr("2001:DB8:0::/64", 6, enable_dhcp=False)   # IPv6Network('2001:db8::/64')
    gateway_ip("2001:db8:0::1", net)                       # '2001:db8::1'
    pools(net, [{"start": "10.0.0.9", "end": "10.0.0.2"}])  # 400 InvalidAllocationPool
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

from common_rpc.errors import Invalid

from .errors import bad_attribute, conflict, invalid, invalid_input

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address
Span = tuple[int, int]

# Neutron's defaults of max_dns_nameservers and max_subnet_host_routes.
MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20


def address(value: Any) -> Addr | None:
    """neutron_lib's ``validate_ip_address``: a string, no blanks, no IPv4 short forms."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def not_an_address(value: Any) -> str:
    return f"'{value}' is not a valid IP address"


def ip_version(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in (4, 6):
        raise bad_attribute("ip_version", f"{value} is not in [4, 6]")
    return int(value)


def _version_mismatch(name: str, value: Any, version: int) -> Invalid:
    return invalid_input(f"{name} '{value}' does not match the ip_version '{version}'")


def cidr(value: Any, version: int, *, enable_dhcp: bool) -> Net:
    """The subnet's network; host bits are cleared (Neutron: "a proper subnet")."""
    try:
        if not isinstance(value, str) or "/" not in value or any(c.isspace() for c in value):
            raise ValueError(value)
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise bad_attribute("cidr", f"'{value}' is not a valid IP subnet") from None
    if net.version != version:
        raise _version_mismatch("cidr", value, version)
    if net.prefixlen == 0:
        raise invalid_input("0 is not allowed as CIDR prefix length")
    if net.num_addresses < (4 if net.version == 4 else 2):
        if enable_dhcp:
            raise invalid_input(
                "Subnet has a prefix length that is incompatible with DHCP service enabled"
            )
        raise invalid_input(f"Subnet {net} has no address for a port")
    return net


def host_bounds(net: Net) -> Span:
    """First and last usable addresses as integers (IPv4 skips network and broadcast)."""
    if net.version == 4:
        return int(net.network_address) + 1, int(net.broadcast_address) - 1
    return int(net.network_address) + 1, int(net.broadcast_address)


def gateway_ip(value: Any, net: Net) -> str | None:
    """None, or a host address of the subnet.

    Neutron also takes a gateway outside the CIDR; the data plane here cannot reach one
    (no on-link route), so it is refused with Neutron's text for a gateway it refuses.
    """
    if value is None:
        return None
    addr = address(value)
    if addr is None:
        raise bad_attribute("gateway_ip", not_an_address(value))
    if addr.version != net.version:
        raise _version_mismatch("gateway_ip", value, net.version)
    low, high = host_bounds(net)
    if not low <= int(addr) <= high:
        raise invalid_input("Gateway is not valid on subnet")
    return str(addr)


def _ip(n: int, net: Net) -> str:
    return str(ipaddress.ip_address(n) if net.version == 4 else ipaddress.IPv6Address(n))


def pool_text(span: Span, net: Net) -> str:
    """A pool as Neutron prints one (netaddr's IPRange): ``10.0.0.2-10.0.0.9``."""
    return f"{_ip(span[0], net)}-{_ip(span[1], net)}"


def keys_text(keys: Any) -> str:
    """A set of keys as Python prints one (Neutron prints sets), in a stable order."""
    return "{" + ", ".join(repr(k) for k in sorted(keys, key=str)) + "}" if keys else "set()"


def _dict_keys(expected: list[str], item: Any) -> str | None:
    """neutron_lib's ``_verify_dict_keys`` (strict)."""
    if not isinstance(item, dict):
        return f"Invalid input. '{item}' must be a dictionary with keys: {expected}"
    if set(item) != set(expected):
        return (
            "Validation of dictionary's keys failed. "
            f"Expected keys: {keys_text(expected)} Provided keys: {keys_text(item)}"
        )
    return None


def pools(net: Net, value: Any) -> list[Span]:
    """Allocation pools: well formed, ordered, inside the subnet's hosts, disjoint."""
    if not isinstance(value, list):
        raise bad_attribute("allocation_pools", f"Invalid data format for IP pool: '{value}'")
    parsed: list[tuple[Any, Addr, Addr]] = []
    for pool in value:
        reason = _dict_keys(["start", "end"], pool)
        if reason:
            raise bad_attribute("allocation_pools", reason)
        ends = [address(pool[k]) for k in ("start", "end")]
        for key, found in zip(("start", "end"), ends, strict=True):
            if found is None:
                raise bad_attribute("allocation_pools", not_an_address(pool[key]))
        start, end = ends
        assert start is not None and end is not None
        if start.version != end.version or start > end:  # type: ignore[operator]
            raise invalid(f"The allocation pool {pool} is not valid.", "InvalidAllocationPool")
        parsed.append((pool, start, end))
    low, high = host_bounds(net)
    spans: list[Span] = []
    for _pool, start, end in parsed:
        span = (int(start), int(end))
        if start.version != net.version:
            text = f"{start}-{end}"
            raise invalid(f"The allocation pool {text} is not valid.", "InvalidAllocationPool")
        if span[0] < low or span[1] > high:
            raise invalid(
                f"The allocation pool {pool_text(span, net)} spans beyond the subnet cidr {net}.",
                "OutOfBoundsAllocationPool",
            )
        spans.append(span)
    for a, b in itertools.combinations(spans, 2):
        if a[0] <= b[1] and b[0] <= a[1]:
            raise conflict(
                "OverlappingAllocationPools",
                f"Found overlapping allocation pools: {pool_text(a, net)} "
                f"{pool_text(b, net)} for subnet {net}.",
            )
    return spans


def gateway_out_of_pools(gateway: str | None, spans: list[Span], net: Net) -> None:
    if gateway is None:
        return
    at = int(ipaddress.ip_address(gateway))
    for span in spans:
        if span[0] <= at <= span[1]:
            raise conflict(
                "GatewayConflictWithAllocationPools",
                f"Gateway ip {gateway} conflicts with allocation pool {pool_text(span, net)}.",
            )


def pool_dicts(spans: list[Span], net: Net) -> list[dict[str, str]]:
    return [{"start": _ip(a, net), "end": _ip(b, net)} for a, b in sorted(spans)]


def default_pools(net: Net, gateway: str | None) -> list[Span]:
    """The subnet's hosts around the gateway (Neutron's ``generate_pools``)."""
    low, high = host_bounds(net)
    hole = int(ipaddress.ip_address(gateway)) if gateway else None
    if hole is None or not low <= hole <= high:
        return [(low, high)] if low <= high else []
    return [(a, b) for a, b in ((low, hole - 1), (hole + 1, high)) if a <= b]


def nameservers(value: Any, version: int, subnet_id: str | None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_attribute("dns_nameservers", f"Invalid data format for nameserver: '{value}'")
    seen: list[str] = []
    for host in value:
        addr = address(host)
        if addr is None:
            reason = f"'{host}' is not a valid nameserver. {not_an_address(host)}"
            raise bad_attribute("dns_nameservers", reason)
        if str(addr) in seen:
            raise bad_attribute("dns_nameservers", f"Duplicate nameserver '{host}'")
        seen.append(str(addr))
    if len(seen) > MAX_DNS_NAMESERVERS:
        raise invalid(
            f"Unable to complete operation for {subnet_id or 'new subnet'}. The number of "
            f"DNS nameservers exceeds the limit {MAX_DNS_NAMESERVERS}.",
            "DNSNameServersExhausted",
        )
    for host, canonical in zip(value, seen, strict=True):
        if ipaddress.ip_address(canonical).version != version:
            raise _version_mismatch("dns_nameserver", host, version)
    return seen


def _route_cidr(value: Any) -> str | None:
    """neutron_lib's ``validate_route_cidr``: a network with its prefix, not loopback."""
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError(value)
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return f"'{value}' is not a valid CIDR"
    if net.is_loopback:
        return f"'{value}' is not a routable CIDR"
    return None


def hostroutes(attribute: str, value: Any) -> list[dict[str, str]]:
    """neutron_lib's ``type:hostroutes`` (a subnet's host routes, a router's routes):
    a list of {destination: CIDR, nexthop: address}, no duplicates; None is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_attribute(attribute, f"Invalid data format for hostroute: '{value}'")
    routes: list[dict[str, str]] = []
    for route in value:
        reason = _dict_keys(["destination", "nexthop"], route)
        reason = reason or _route_cidr(route["destination"])
        if reason is None and address(route["nexthop"]) is None:
            reason = not_an_address(route["nexthop"])
        if reason:
            raise bad_attribute(attribute, reason)
        canonical = {
            "destination": str(ipaddress.ip_network(route["destination"])),
            "nexthop": str(ipaddress.ip_address(route["nexthop"])),
        }
        if canonical in routes:
            raise bad_attribute(attribute, f"Duplicate hostroute '{route}'")
        routes.append(canonical)
    return routes


def host_routes(value: Any, version: int, subnet_id: str | None) -> list[dict[str, str]]:
    routes = hostroutes("host_routes", value)
    if len(routes) > MAX_HOST_ROUTES:
        raise invalid(
            f"Unable to complete operation for {subnet_id or 'new subnet'}. The number of "
            f"host routes exceeds the limit {MAX_HOST_ROUTES}.",
            "HostRoutesExhausted",
        )
    for route, canonical in zip(value or (), routes, strict=True):
        for key in ("nexthop", "destination"):
            if ipaddress.ip_network(canonical[key]).version != version:
                raise _version_mismatch(key, route[key], version)
    return routes
