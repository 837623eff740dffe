"""Security-group member sets (ipset): one set per (group, ethertype), matched by one rule.

A remote-group rule becomes ``-m set --match-set NAME src``, so a port's chain holds one
rule per security-group rule whatever the group's size; only the set grows. A set is
refilled under a scratch name and swapped in, in one ``ipset restore`` batch, so a rule
never sees it half filled. A set referenced by an iptables rule cannot be destroyed (the
kernel refuses), so rules go first, sets after.

    sets = IpSets(Names("zk1"))
    sets.ensure("zk1sg4-6f1c2d3e…", "IPv4", ["10.0.0.5", "10.0.0.6"])
    sets.owned()                      # frozenset({"zk1sg4-6f1c2d3e…"})
    sets.destroy("zk1sg4-6f1c2d3e…")  # False while a rule still uses it
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from network_svc.drivers.base import DriverError
from network_svc.drivers.linux import priv
from network_svc.drivers.names import SWAP_SUFFIX, Names

IPSET = ["ipset"]


def _members(ethertype: str, addresses: Iterable[str]) -> list[str]:
    """Addresses of that family, checked and normalised (they reach ipset as text)."""
    version = 6 if ethertype == "IPv6" else 4
    nets = {ipaddress.ip_network(a, strict=False) for a in addresses}
    return sorted(
        (str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n))
        for n in nets
        if n.version == version
    )


class IpSets:
    def __init__(self, names: Names) -> None:
        self.names = names

    def _ours(self, name: str) -> None:
        if not name.startswith(self.names.ipset_prefix()) or not name.replace("-", "").isalnum():
            raise DriverError(f"not one of our sets: {name!r}")

    def members(self, name: str) -> list[str] | None:
        """The set's members as ``ipset save`` lists them; None when it does not exist."""
        self._ours(name)
        try:
            out = priv.run([*IPSET, "save", name], timeout=15)
        except priv.CommandError:
            return None
        return sorted(p[2] for p in (x.split() for x in out.splitlines()) if p[:1] == ["add"])

    def ensure(self, name: str, ethertype: str, addresses: Iterable[str]) -> bool:
        """Make the set hold exactly ``addresses`` of its family; True if it changed."""
        self._ours(name)
        wanted = _members(ethertype, addresses)
        if self.members(name) == wanted:
            return False
        family = "inet6" if ethertype == "IPv6" else "inet"
        scratch = name + SWAP_SUFFIX
        lines = [
            f"create {name} hash:net family {family} -exist",
            f"create {scratch} hash:net family {family} -exist",
            f"flush {scratch}",
            *(f"add {scratch} {member}" for member in wanted),
            f"swap {scratch} {name}",
            f"destroy {scratch}",
        ]
        priv.run([*IPSET, "restore"], timeout=30, input="\n".join(lines) + "\n")
        return True

    def destroy(self, name: str) -> bool:
        """Remove the set; False (and it stays) while an iptables rule still references it."""
        self._ours(name)
        try:
            priv.run([*IPSET, "destroy", name], timeout=15)
        except priv.CommandError as exc:
            if "does not exist" in exc.stderr:
                return True
            if "in use" in exc.stderr:
                return False
            raise
        return True

    def owned(self) -> frozenset[str]:
        head = self.names.ipset_prefix()
        out = priv.run([*IPSET, "list", "-n"], timeout=15)
        return frozenset(x.strip() for x in out.splitlines() if x.strip().startswith(head))


def all_sets() -> list[str]:
    """Every set on the host (the sweep filters by prefix)."""
    return [x.strip() for x in priv.run([*IPSET, "list", "-n"], timeout=15).splitlines() if x]
