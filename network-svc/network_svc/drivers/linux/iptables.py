"""IptablesFirewall: per-port chains on bridged traffic (br_netfilter + physdev + conntrack).

Layout in the filter table (P = the Names prefix), the same in iptables and ip6tables::

    FORWARD -m physdev --physdev-is-bridged -j Pstk-fwd
    Pstk-fwd  jumps, per port: --physdev-in DEV → Pstk-o<port> ; --physdev-out DEV → Pstk-i<port>
              then, appended last, ACCEPT for traffic that touched a port (both sides checked)
    Pstk-o…   egress: DHCP client, anti-spoofing via Pstk-s…, conntrack, rules, DROP
    Pstk-i…   ingress: conntrack, DHCP replies, rules, DROP

A rule naming a remote group matches that group's member set (ipset.py): one rule,
whatever the number of members; the set must exist before the chain that names it.
Subnets are IPv4 only, so the ip6tables chains of a secured port drop everything; ARP and
source MAC are checked by ebtables (arp.py).
A port's chains are rewritten in one iptables-restore --noflush transaction, so the port
is never unprotected while its rules change.

Example::

    fw = IptablesFirewall(Names())
    fw.ensure_port(port_spec, [SecurityGroupRule("ingress", "icmp")])
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence

from network_svc.drivers.base import DriverConfig, DriverError, PortSpec, SecurityGroupRule, SetKey
from network_svc.drivers.linux import priv
from network_svc.drivers.linux.arp import ensure_arp, owned_arp, remove_arp
from network_svc.drivers.linux.ipset import IpSets
from network_svc.drivers.names import Names
from network_svc.protocols import IP_PROTOCOL_MAP, number

IPT = ["iptables", "-w", "10"]
IPT6 = ["ip6tables", "-w", "10"]
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_PROTOCOLS = {"tcp", "udp", "icmp"}


def rule_args(rule: SecurityGroupRule, member_set: str | None = None) -> list[str]:
    """One IPv4 security-group rule as iptables match arguments (without chain and target).

    ``member_set``: the ipset of ``rule.remote_group_id`` (required when it is set).
    """
    # every value is checked: the rules reach iptables-restore as text
    args: list[str] = []
    if rule.remote_group_id:
        if not member_set or not member_set.replace("-", "").isalnum():
            raise DriverError(f"remote group {rule.remote_group_id!r}: bad set {member_set!r}")
        side = "src" if rule.direction == "ingress" else "dst"
        args += ["-m", "set", "--match-set", member_set, side]
    elif rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        args += ["-s" if rule.direction == "ingress" else "-d", str(net)]
    proto = rule.protocol
    if proto:
        if proto not in IP_PROTOCOL_MAP and not (proto.isdigit() and int(proto) < 256):
            raise DriverError(f"unsupported protocol {proto!r}")
        # iptables knows a few names; any other protocol is matched by its number
        proto = proto if proto in _PROTOCOLS else str(number(proto))
        proto = {"6": "tcp", "17": "udp", "1": "icmp"}.get(proto, proto)
        args += ["-p", proto]
        lo, hi = rule.port_range_min, rule.port_range_max
        for value in (lo, hi):
            if value is not None and not (isinstance(value, int) and 0 <= value <= 65535):
                raise DriverError(f"bad port or ICMP value {value!r}")
        ports = f"{lo}:{hi if hi is not None else lo}"
        if proto in ("tcp", "udp") and lo is not None:
            args += ["-m", proto, "--dport", ports]
        elif proto in ("132", "33") and lo is not None:  # sctp, dccp: their own match
            args += ["-m", {"132": "sctp", "33": "dccp"}[proto], "--dport", ports]
        elif proto == "136" and lo is not None:  # udplite: multiport only
            args += ["-m", "multiport", "--dports", ports]
        elif proto == "icmp" and lo is not None:
            args += ["--icmp-type", f"{lo}" + ("" if hi is None else f"/{hi}")]
    return args


def _check_port(spec: PortSpec) -> None:
    if not _MAC.match(spec.mac.lower()):
        raise DriverError(f"port {spec.port_id}: bad MAC {spec.mac!r}")
    for ip in spec.fixed_ips:
        ipaddress.ip_address(ip)


class IptablesFirewall:
    def __init__(self, names: Names | None = None) -> None:
        self.names = names or Names()
        self.sets = IpSets(self.names)

    @classmethod
    def from_config(cls, config: DriverConfig) -> IptablesFirewall:
        return cls(config.names)

    def _args(self, rule: SecurityGroupRule) -> list[str]:
        group = rule.remote_group_id
        return rule_args(rule, self.names.ipset(group, rule.ethertype) if group else None)

    def _chains(self, port_id: str) -> tuple[str, str, str]:
        n = self.names
        return n.chain("i", port_id), n.chain("o", port_id), n.chain("s", port_id)

    def _v4_rules(
        self, spec: PortSpec, rules: Sequence[SecurityGroupRule]
    ) -> dict[str, list[list[str]]]:
        ingress, egress, source = self._chains(spec.port_id)
        ret, drop = ["-j", "RETURN"], ["-j", "DROP"]
        if not spec.port_security:
            return {ingress: [ret], egress: [ret], source: [ret]}
        est = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *ret]
        invalid = ["-m", "conntrack", "--ctstate", "INVALID", *drop]
        mac = ["-m", "mac", "--mac-source", spec.mac.lower()]
        dhcp_reply = ["-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68"]
        dhcp_client = ["-s", "0.0.0.0/32", "-d", "255.255.255.255/32", "-p", "udp"]
        dhcp_client += ["-m", "udp", "--sport", "68", "--dport", "67", *mac, *ret]
        v4 = [r for r in rules if r.ethertype == "IPv4"]
        out = [dhcp_client, ["-j", source], [*dhcp_reply, *drop], est, invalid]  # no rogue DHCP
        out += [[*self._args(r), *ret] for r in v4 if r.direction == "egress"]
        inn = [est, [*dhcp_reply, *ret], invalid]
        inn += [[*self._args(r), *ret] for r in v4 if r.direction == "ingress"]
        ips = [ip for ip in spec.fixed_ips if ipaddress.ip_address(ip).version == 4]
        src = [["-s", f"{ip}/32", *mac, *ret] for ip in ips]
        return {ingress: [*inn, drop], egress: [*out, drop], source: [*src, drop]}

    def _v6_rules(self, spec: PortSpec) -> dict[str, list[list[str]]]:
        verdict = ["-j", "RETURN" if not spec.port_security else "DROP"]
        return {chain: [verdict] for chain in self._chains(spec.port_id)}

    def ensure_port(self, spec: PortSpec, rules: Sequence[SecurityGroupRule]) -> None:
        _check_port(spec)
        ensure_arp(self.names, spec)
        for ipt, chains in ((IPT, self._v4_rules(spec, rules)), (IPT6, self._v6_rules(spec))):
            lines = ["*filter", *(f":{c} - [0:0]" for c in chains)]
            for chain, body in chains.items():
                lines += [" ".join(["-A", chain, *args]) for args in body]
            lines.append("COMMIT")
            restore = [f"{ipt[0]}-restore", "-w", "10", "--noflush"]
            # one transaction: the chains are flushed and refilled atomically
            priv.run(restore, timeout=30, input="\n".join(lines) + "\n")
            self._ensure_dispatch(ipt, spec)

    def _dispatch_rules(self, port_id: str, device: str) -> list[tuple[str, list[str]]]:
        ingress, egress, _source = self._chains(port_id)
        # the comment tags every dispatch rule with its port, whatever the device is called
        tag = ["-m", "comment", "--comment", self.names.chain("port", port_id)]
        into = ["-m", "physdev", "--physdev-in", device, "--physdev-is-bridged", *tag]
        out_of = ["-m", "physdev", "--physdev-out", device, "--physdev-is-bridged", *tag]
        return [
            ("-I", [*into, "-j", egress]),
            ("-I", [*out_of, "-j", ingress]),
            ("-A", [*into, "-j", "ACCEPT"]),
            ("-A", [*out_of, "-j", "ACCEPT"]),
        ]

    def _tagged(self, ipt: list[str], port_id: str) -> list[list[str]]:
        """The dispatch rules of one port, as `-A fwd …` argument lists."""
        fwd, tag = self.names.chain("fwd"), self.names.chain("port", port_id)
        if not _ok(ipt, ["-S", fwd]):
            return []
        lines = priv.run([*ipt, "-S", fwd], timeout=15).splitlines()
        return [p for p in (x.split() for x in lines) if p[:2] == ["-A", fwd] and tag in p]

    def _ensure_dispatch(self, ipt: list[str], spec: PortSpec) -> None:
        fwd = self.names.chain("fwd")
        if not _ok(ipt, ["-S", fwd]):
            priv.run([*ipt, "-N", fwd], timeout=15)
        jump = ["FORWARD", "-m", "physdev", "--physdev-is-bridged", "-j", fwd]
        if not _ok(ipt, ["-C", *jump]):
            priv.run([*ipt, "-I", *jump], timeout=15)
        device = spec.device or self.names.port_device(spec.port_id)
        for parts in self._tagged(ipt, spec.port_id):
            if device not in parts:  # the port moved to another device
                priv.run([*ipt, "-D", *parts[1:]], timeout=15)
        # jumps go first and ACCEPTs last, so both ends of a port-to-port packet are checked
        for op, args in self._dispatch_rules(spec.port_id, device):
            if not _ok(ipt, ["-C", fwd, *args]):
                priv.run([*ipt, op, fwd, *args], timeout=15)

    def remove_port(self, port_id: str) -> None:
        remove_arp(self.names, port_id)
        ours = set(self._chains(port_id))
        for ipt in (IPT, IPT6):
            for parts in self._tagged(ipt, port_id):
                priv.run([*ipt, "-D", *parts[1:]], timeout=15)
            existing = self._owned(ipt)
            for chain in ours & existing:
                priv.run([*ipt, "-F", chain], timeout=15)
            for chain in ours & existing:
                priv.run([*ipt, "-X", chain], timeout=15)
            self._drop_dispatch_if_empty(ipt)

    def _drop_dispatch_if_empty(self, ipt: list[str]) -> None:
        fwd = self.names.chain("fwd")
        if not _ok(ipt, ["-S", fwd]):
            return
        if any(x.startswith("-A") for x in priv.run([*ipt, "-S", fwd], timeout=15).splitlines()):
            return
        jump = ["FORWARD", "-m", "physdev", "--physdev-is-bridged", "-j", fwd]
        while _ok(ipt, ["-C", *jump]):
            priv.run([*ipt, "-D", *jump], timeout=15)
        priv.run([*ipt, "-X", fwd], timeout=15)

    def _owned(self, ipt: list[str]) -> frozenset[str]:
        head = self.names.chain_prefix()
        lines = priv.run([*ipt, "-S"], timeout=15).splitlines()
        parts = (x.split() for x in lines)
        return frozenset(p[1] for p in parts if p[:1] == ["-N"] and p[1].startswith(head))

    def ensure_sets(self, members: Mapping[SetKey, Sequence[str]]) -> None:
        for (group_id, ethertype), addresses in sorted(members.items()):
            self.sets.ensure(self.names.ipset(group_id, ethertype), ethertype, addresses)

    def remove_sets(self, keep: Collection[SetKey]) -> int:
        """Sets in use by a rule stay (the kernel refuses): the next call takes them."""
        wanted = {self.names.ipset(group_id, ethertype) for group_id, ethertype in keep}
        return sum(self.sets.destroy(name) for name in sorted(self.sets.owned() - wanted))

    def list_sets(self) -> frozenset[str]:
        return self.sets.owned()

    def list_owned(self) -> frozenset[str]:
        """Every chain (iptables, ip6tables, ebtables) whose name carries our prefix."""
        return self._owned(IPT) | self._owned(IPT6) | owned_arp(self.names)


def _ok(ipt: list[str], args: list[str]) -> bool:
    try:
        priv.run([*ipt, *args], timeout=15)
    except priv.CommandError:
        return False
    return True
