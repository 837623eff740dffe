"""Real-kernel lab for the Linux data-plane drivers: guests are network namespaces.

Every object carries a random prefix, so runs never meet each other or the host's own
objects; the `lab` fixture removes everything and asserts that nothing with the prefix
is left (links, namespaces, iptables chains, dnsmasq processes).

    def test_x(lab):
        net = lab.network(cidr="10.70.0.0/24")
        a = lab.guest(net, "10.70.0.10")
        assert a.dhcp() == "10.70.0.10" and a.ping("10.70.0.2")
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from network_svc.drivers.base import (
    DhcpHost,
    NetworkSpec,
    PortSpec,
    SecurityGroupRule,
    SubnetSpec,
)
from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.linux.bridge import LinuxBridgeL2
from network_svc.drivers.linux.dnsmasq import DnsmasqDhcp
from network_svc.drivers.linux.iptables import IptablesFirewall
from network_svc.drivers.linux.sweep import leftovers, sweep
from network_svc.drivers.names import Names

OPEN = (SecurityGroupRule("egress"), SecurityGroupRule("ingress", "icmp"))
EGRESS_ONLY = (SecurityGroupRule("egress"),)

# busybox udhcpc calls this with "bound"; printing the lease lets the test read it back
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    echo "lease $ip $mask $router $dns $mtu"
    ;;
esac
exit 0
"""


def need_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the Linux data plane needs root")
    for tool in ("busybox", "dnsmasq", "iptables", "iptables-restore", "ip", "ipset"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@dataclass
class Guest:
    lab: Lab
    ns: str
    dev: str
    port: PortSpec
    last_lease: list[str] = field(default_factory=list)  # ip, mask, router, dns, mtu

    def sh(self, *argv: str, check: bool = True, timeout: float = 20) -> str:
        return priv.run(priv.in_netns(self.ns, argv), timeout=timeout, check=check)

    def dhcp(self) -> str | None:
        """Run a DHCP client once; return the leased IP (None: no lease)."""
        out = self.sh(
            "busybox", "udhcpc", "-i", self.dev, "-O", "mtu", "-f", "-q", "-n",
            "-t", "4", "-T", "1", "-s", str(self.lab.script), check=False, timeout=30,
        )  # fmt: skip
        for line in out.splitlines():
            if line.startswith("lease "):
                self.last_lease = line.split()[1:]
                return self.last_lease[0]
        return None

    def ping(self, ip: str) -> bool:
        try:
            self.sh("busybox", "ping", "-c", "1", "-W", "1", ip, timeout=10)
        except priv.CommandError:
            return False
        return True

    def set_ip(self, cidr: str) -> None:
        self.sh("ip", "addr", "flush", "dev", self.dev)
        self.sh("ip", "addr", "add", cidr, "dev", self.dev)

    def add_ipv6(self, cidr: str) -> None:
        self.sh("sysctl", "-q", "-w", f"net.ipv6.conf.{self.dev}.disable_ipv6=0")
        self.sh("ip", "-6", "addr", "add", cidr, "dev", self.dev, "nodad")

    def ping6(self, ip: str) -> bool:
        try:
            self.sh("busybox", "ping", "-6", "-c", "1", "-W", "1", ip, timeout=10)
        except priv.CommandError:
            return False
        return True

    def set_mac(self, mac: str) -> None:
        netlink.set_link(self.dev, self.ns, address=mac)


@dataclass
class Lab:
    prefix: str
    state_dir: Path
    names: Names = field(init=False)
    l2: LinuxBridgeL2 = field(init=False)
    dhcp: DnsmasqDhcp = field(init=False)
    fw: IptablesFirewall = field(init=False)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    hosts: dict[str, list[DhcpHost]] = field(default_factory=dict)
    guests: list[Guest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = Names(self.prefix)
        self.l2 = LinuxBridgeL2(self.names, local_ip="127.0.0.1")
        self.dhcp = DnsmasqDhcp(self.names, state_dir=self.state_dir / "dhcp")
        self.fw = IptablesFirewall(self.names)
        self.script = self.state_dir / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    def network(self, cidr: str, kind: str = "local", vni: int | None = None) -> NetworkSpec:
        base = cidr.rsplit(".", 1)[0]
        subnet = SubnetSpec(str(uuid.uuid4()), cidr, f"{base}.1", dns_nameservers=("192.0.2.53",))
        spec = NetworkSpec(str(uuid.uuid4()), kind, vni, 1450, (subnet,))  # type: ignore[arg-type]
        self.networks[spec.network_id] = spec
        self.hosts[spec.network_id] = []
        self.l2.ensure_network(spec)
        self.dhcp.ensure(spec, [])
        return spec

    def guest(
        self,
        net: NetworkSpec,
        ip: str,
        rules: Sequence[SecurityGroupRule] = OPEN,
        port_security: bool = True,
    ) -> Guest:
        n = len(self.guests)
        port_id = str(uuid.uuid4())
        mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
        host_dev = self.names.port_device(port_id)
        ns, dev = f"{self.prefix}guest{n}", f"{self.prefix}eth{n}"
        netlink.ensure_netns(ns)
        netlink.set_link("lo", ns, state="up")
        netlink.ensure_veth(host_dev, dev, ns)
        netlink.move_to_netns(dev, ns)
        netlink.set_link(dev, ns, address=mac)
        netlink.set_up(dev, ns, mtu=net.mtu)
        port = PortSpec(port_id, net.network_id, mac, (ip,), port_security, host_dev)
        self.fw.ensure_port(port, rules)  # anti-spoofing before the port is wired
        self.l2.plug_port(port)
        self.hosts[net.network_id].append(DhcpHost(mac, ip, f"host-{ip.replace('.', '-')}"))
        self.dhcp.ensure(net, self.hosts[net.network_id])
        guest = Guest(self, ns, dev, port)
        self.guests.append(guest)
        return guest

    def close(self) -> None:
        for g in self.guests:
            self.fw.remove_port(g.port.port_id)
            self.l2.unplug_port(g.port.port_id)
            netlink.delete_link(g.port.device)
            netlink.remove_netns(g.ns)
        for net_id in self.networks:
            self.dhcp.delete(net_id)
            self.l2.delete_network(net_id)
        self.guests.clear()
        self.networks.clear()


@pytest.fixture(name="lab")
def lab_fixture() -> Iterator[Lab]:
    need_root_tools()
    prefix = "z" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3))
    state_dir = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}-"))
    state_dir.chmod(0o755)  # dnsmasq reads its files after dropping root
    the_lab = Lab(prefix, state_dir)
    try:
        yield the_lab
    finally:
        try:
            the_lab.close()
        finally:
            sweep(prefix, state_dir)
            left = leftovers(prefix, state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
        assert left == {"links": [], "netns": [], "chains": [], "dnsmasq": []}, left
