"""Everything of ours on this host that carries a name prefix: listed, and removed by name.

Tests and benchmarks run their agents under a random prefix; this is their last resort
after a failure, when the agent did not get to clean up (a reconcile removes what the
DB no longer has; this removes everything with the prefix).

    left = leftovers("zk1", state_dir)   # {"links": [...], "netns": [...], "chains": [...], ...}
    sweep("zk1", state_dir)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.linux.arp import EBT
from network_svc.drivers.linux.ipset import IPSET, all_sets
from network_svc.drivers.linux.iptables import IPT, IPT6


def our_rules(prefix: str) -> list[str]:
    """The filter-table lines (IPv4 and IPv6), ebtables lines and member sets (``set NAME``)
    that carry the prefix; other runs own the rest."""
    lines = [*_rules(IPT), *(f"v6 {x}" for x in _rules(IPT6))]
    lines += [f"eb {x}" for x in priv.run([*EBT, "-L"], timeout=15).splitlines()]
    lines += [f"set {x}" for x in all_sets() if x.startswith(prefix)]
    return [x for x in lines if prefix in x]


def _rules(ipt: list[str]) -> list[str]:
    return priv.run([*ipt, "-S"], timeout=15).splitlines()


def leftovers(prefix: str, state_dir: Path) -> dict[str, list[str]]:
    """Everything on the host that carries the prefix or runs from the state dir."""
    return {
        "links": sorted(n for n in netlink.links() if n.startswith(prefix)),
        "netns": sorted(n for n in netlink.list_netns() if n.startswith(prefix)),
        "chains": our_rules(prefix),
        "dnsmasq": [str(p) for p in _dnsmasq_pids(state_dir)],
    }


def _dnsmasq_pids(state_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "dnsmasq" in cmd and str(state_dir) in cmd:
                pids.append(int(entry.name))
    return pids


def sweep(prefix: str, state_dir: Path) -> None:
    """Last resort after a failed test: remove anything with the prefix, by name."""
    for pid in _dnsmasq_pids(state_dir):
        os.kill(pid, signal.SIGKILL)
    for ns in netlink.list_netns():
        if ns.startswith(prefix):
            netlink.remove_netns(ns)
    for name in netlink.links():
        if name.startswith(prefix):
            netlink.delete_link(name)
    for ipt in (IPT, IPT6):
        lines = _rules(ipt)
        chains = [
            x.split()[1] for x in lines if x.startswith("-N ") and x.split()[1].startswith(prefix)
        ]
        # Jumps into our chains from chains that are not ours, then ours whole (-F, -X):
        # one command per chain, not per rule (a remote-group chain can hold thousands).
        for line in lines:
            if line.startswith("-A ") and not line.split()[1].startswith(prefix) and prefix in line:
                priv.run([*ipt, "-D", *line.split()[1:]], timeout=15, check=False)
        for chain in chains:
            priv.run([*ipt, "-F", chain], timeout=15, check=False)
        for chain in chains:
            priv.run([*ipt, "-X", chain], timeout=15, check=False)
    # Member sets last: the kernel keeps a set while a rule references it.
    for name in all_sets():
        if name.startswith(prefix):
            priv.run([*IPSET, "destroy", name], timeout=15, check=False)
    for line in priv.run([*EBT, "-L", "FORWARD"], timeout=15).splitlines():
        if line.startswith("-") and prefix in line:
            priv.run([*EBT, "-D", "FORWARD", *line.split()], timeout=15, check=False)
    for line in priv.run([*EBT, "-L"], timeout=15).splitlines():
        if line.startswith(f"Bridge chain: {prefix}"):
            chain = line.split()[2].rstrip(",")
            priv.run([*EBT, "-F", chain], timeout=15, check=False)
            priv.run([*EBT, "-X", chain], timeout=15, check=False)
