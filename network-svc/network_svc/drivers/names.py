"""Host object names, derived from ids only and short enough for the kernel (15 chars).

A prefix lets tests run side by side on one host without touching anything real.

Example::

    n = Names()
    n.bridge("6f1c2d3e-…")      # "brq6f1c2d3e4a5b"
    Names("zk1").bridge(...)    # "zk1brq6f1c2d3e4" (fewer id chars, same 15-char cap)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IFNAMSIZ = 15
CHAIN_MAX = 28
IPSET_MAX = 31
SWAP_SUFFIX = "-n"  # the scratch copy of a set while its members are replaced
_PREFIX = re.compile(r"^[a-z0-9]{0,5}$")


def _hex(ident: str) -> str:
    return re.sub(r"[^0-9a-f]", "", ident.lower())


@dataclass(frozen=True)
class Names:
    prefix: str = ""

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"name prefix must match {_PREFIX.pattern}: {self.prefix!r}")

    def _dev(self, kind: str, ident: str) -> str:
        head = self.prefix + kind
        return head + _hex(ident)[: min(11, IFNAMSIZ - len(head))]

    def bridge(self, network_id: str) -> str:
        return self._dev("brq", network_id)

    def vxlan(self, vni: int) -> str:
        name = f"{self.prefix}vxlan-{vni}"
        if len(name) > IFNAMSIZ:
            raise ValueError(f"vxlan device name too long: {name}")
        return name

    def dhcp_namespace(self, network_id: str) -> str:
        return f"{self.prefix}qdhcp-{network_id}"

    def dhcp_host_dev(self, network_id: str) -> str:
        return self._dev("tap", network_id)

    def dhcp_ns_dev(self, network_id: str) -> str:
        return self._dev("ns-", network_id)

    def port_device(self, port_id: str) -> str:
        return self._dev("tap", port_id)

    def link_prefixes(self) -> tuple[str, ...]:
        return tuple(self.prefix + k for k in ("brq", "vxlan-", "tap", "ns-"))

    def chain(self, kind: str, port_id: str = "") -> str:
        # kind: "fwd" (dispatch), "i" ingress, "o" egress, "s" source check
        return f"{self.prefix}stk-{kind}{_hex(port_id)[:11]}"[:CHAIN_MAX]

    def chain_prefix(self) -> str:
        return f"{self.prefix}stk-"

    def ipset(self, group_id: str, ethertype: str) -> str:
        """The ipset of one security group's member addresses (IPv4 or IPv6).

        Room is left for ``SWAP_SUFFIX``: the set is refilled under that name, then swapped.
        """
        head = f"{self.ipset_prefix()}{'6' if ethertype == 'IPv6' else '4'}-"
        return head + _hex(group_id)[: IPSET_MAX - len(SWAP_SUFFIX) - len(head)]

    def ipset_prefix(self) -> str:
        return f"{self.prefix}sg"

    def router_namespace(self, router_id: str) -> str:
        return f"{self.prefix}qrouter-{router_id}"

    def router_legs(self, port_id: str, gateway: bool = False) -> tuple[str, str]:
        """(host end on the bridge, namespace end) of a router interface or gateway port."""
        if gateway:
            return self._dev("tg", port_id), self._dev("qg", port_id)
        return self._dev("tr", port_id), self._dev("qr", port_id)
