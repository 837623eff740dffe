"""IP protocol names as Neutron knows them (neutron_lib.constants.IP_PROTOCOL_MAP), shared
by the API's rule checks and the firewall driver (which matches on numbers)."""

from __future__ import annotations

IP_PROTOCOL_MAP: dict[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "hopopt": 0,
    "icmp": 1,
    "igmp": 2,
    "ip": 0,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "icmpv6": 58,  # the legacy name, kept by Neutron's API
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}
# Protocols with ports (Neutron's SG_PORT_PROTO_NAMES).
PORT_PROTOCOLS = ("dccp", "sctp", "tcp", "udp", "udplite")
ICMP_NUMBERS = (1, 58)
# What Neutron's IPv4 rules refuse (they only exist in IPv6).
IPV6_ONLY = frozenset(
    {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route"}
    | {"41", "44", "58", "59", "60", "43"}
)


def number(protocol: str) -> int:
    """The IANA number of a protocol name or number string ("tcp" -> 6, "6" -> 6)."""
    return IP_PROTOCOL_MAP[protocol] if protocol in IP_PROTOCOL_MAP else int(protocol)
