"""ARP and MAC anti-spoofing for bridge ports with ebtables (iptables never sees ARP).

One chain per secured port, jumped from the bridge FORWARD chain by input device::

    FORWARD -i DEV -j Pstk-a<port>
    Pstk-a…  -p ARP --arp-ip-src IP --arp-mac-src MAC -j RETURN   (one per fixed IP)
             -s ! MAC -j DROP ;  -p ARP -j DROP ;  policy RETURN

Example::

    ensure_arp(Names(), port_spec)    # before the port joins the bridge
    remove_arp(Names(), port_spec.port_id)
"""

from __future__ import annotations

import ipaddress

from network_svc.drivers.base import PortSpec
from network_svc.drivers.linux import priv
from network_svc.drivers.names import Names

EBT = ["ebtables", "--concurrent"]


def _listing(chain: str) -> list[str] | None:
    try:
        out = priv.run([*EBT, "-L", chain], timeout=15)
    except priv.CommandError:
        return None
    return [x.strip() for x in out.splitlines() if x.startswith("-")]


def _rules(spec: PortSpec) -> list[list[str]]:
    mac = spec.mac.lower()
    ips = [ip for ip in spec.fixed_ips if ipaddress.ip_address(ip).version == 4]
    rules = [["-p", "ARP", "--arp-ip-src", ip, "--arp-mac-src", mac, "-j", "RETURN"] for ip in ips]
    return [*rules, ["-s", "!", mac, "-j", "DROP"], ["-p", "ARP", "-j", "DROP"]]


def ensure_arp(names: Names, spec: PortSpec) -> None:
    chain = names.chain("a", spec.port_id)
    if not spec.port_security:
        remove_arp(names, spec.port_id)
        return
    want = _rules(spec)
    have = _listing(chain)
    if have is None:
        priv.run([*EBT, "-N", chain, "-P", "RETURN"], timeout=15)
    if have != [" ".join(r) for r in want]:
        # ebtables has no per-chain restore here: refill right away (the port is not wired yet
        # on first ensure; later only its own MAC/IP set changes)
        priv.run([*EBT, "-F", chain], timeout=15)
        for rule in want:
            priv.run([*EBT, "-A", chain, *rule], timeout=15)
    device = spec.device or names.port_device(spec.port_id)
    jump = f"-i {device} -j {chain}"
    for line in _listing("FORWARD") or []:
        if line.endswith(f"-j {chain}") and line != jump:  # the port moved to another device
            priv.run([*EBT, "-D", "FORWARD", *line.split()], timeout=15)
    if jump not in (_listing("FORWARD") or []):
        priv.run([*EBT, "-I", "FORWARD", *jump.split()], timeout=15)


def remove_arp(names: Names, port_id: str) -> None:
    chain = names.chain("a", port_id)
    for line in _listing("FORWARD") or []:
        if line.endswith(f"-j {chain}"):
            priv.run([*EBT, "-D", "FORWARD", *line.split()], timeout=15)
    if _listing(chain) is not None:
        priv.run([*EBT, "-F", chain], timeout=15)  # nf_tables refuses to delete a full chain
        priv.run([*EBT, "-X", chain], timeout=15)


def owned_arp(names: Names) -> frozenset[str]:
    out = priv.run([*EBT, "-L"], timeout=15).splitlines()
    head = f"Bridge chain: {names.chain_prefix()}"
    return frozenset(x.split()[2].rstrip(",") for x in out if x.startswith(head))
