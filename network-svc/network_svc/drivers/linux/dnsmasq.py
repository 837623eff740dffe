"""DnsmasqDhcp: one namespace and one dnsmasq per network, static leases for known ports only.

The namespace gets a veth whose host end joins the network's bridge; dnsmasq daemonizes
with a pid file under state_dir, so a restarted network-agent finds it again (level-triggered).

Example::

    dhcp = DnsmasqDhcp(Names(), state_dir=Path("/var/lib/stackling/dhcp"))
    dhcp.ensure(net_spec, [DhcpHost("fa:16:3e:00:00:01", "10.0.0.5", "host-10-0-0-5")])
    dhcp.delete(net_spec.network_id)
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from network_svc.drivers.base import DhcpHost, DriverConfig, DriverError, NetworkSpec, SubnetSpec
from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.names import Names

LEASE_SECONDS = 86400
# Seconds a network's namespace plumbing, once made, is trusted without looking again: a
# burst of ports on one network then costs a hosts-file write each, not a round of netns
# work each. The agent's periodic reconcile (longer than this) checks it for real.
PLUMBING_TRUSTED_S = 20.0


def server_ip(subnet: SubnetSpec) -> str:
    """The DHCP port's address: given, else the first host from .2 that is not the gateway."""
    if subnet.dhcp_server_ip:
        return subnet.dhcp_server_ip
    net = ipaddress.ip_network(subnet.cidr)
    for host in net.hosts():
        if int(host) - int(net.network_address) >= 2 and str(host) != subnet.gateway_ip:
            return str(host)
    raise DriverError(f"subnet {subnet.subnet_id} has no room for a DHCP address")


def subnet_options(tag: str, subnet: SubnetSpec, all_subnets: Sequence[SubnetSpec]) -> list[str]:
    """dnsmasq's options for one subnet, as Neutron's DHCP agent writes them.

    DNS servers (all "0.0.0.0": announce none); host routes as classless static routes
    (option 121 and Windows' 249), with an on-link route to each other IPv4 subnet of the
    network and, since a client that takes option 121 ignores option 3, the default
    route too; a ``0.0.0.0/0`` host route stands in for a missing gateway.
    """
    lines = []
    if subnet.dns_nameservers:
        if all(ipaddress.ip_address(d).packed == bytes(4) for d in subnet.dns_nameservers):
            lines.append(f"tag:{tag},option:dns-server")
        else:
            lines.append(f"tag:{tag},option:dns-server," + ",".join(subnet.dns_nameservers))
    gateway = subnet.gateway_ip
    routes = []
    for destination, nexthop in subnet.host_routes:
        if destination == "0.0.0.0/0":
            gateway = gateway or nexthop
        else:
            routes.append(f"{destination},{nexthop}")
    for other in all_subnets:
        if ipaddress.ip_network(other.cidr).version == 4 and other.cidr != subnet.cidr:
            routes.insert(0, f"{other.cidr},0.0.0.0")
    if routes:
        if gateway:
            routes.append(f"0.0.0.0/0,{gateway}")
        lines.append(f"tag:{tag},option:classless-static-route," + ",".join(routes))
        lines.append(f"tag:{tag},249," + ",".join(routes))
    lines.append(f"tag:{tag},option:router" + (f",{gateway}" if gateway else ""))
    return lines


def _hostname(name: str) -> str:
    # the hosts file is parsed by dnsmasq: keep only DNS label characters
    return re.sub(r"[^a-z0-9-]", "-", name.lower())[:63].strip("-") or "host"


class DnsmasqDhcp:
    def __init__(self, names: Names | None = None, *, state_dir: Path) -> None:
        self.names = names or Names()
        self.state_dir = Path(state_dir)
        # network id -> (what its plumbing was made for, the namespace device, when)
        self._plumbed: dict[str, tuple[tuple[object, ...], str, float]] = {}

    @classmethod
    def from_config(cls, config: DriverConfig) -> DnsmasqDhcp:
        if config.state_dir is None:
            raise ValueError("the dnsmasq DHCP driver needs a state_dir")
        return cls(config.names, state_dir=config.state_dir)

    def _dir(self, network_id: str) -> Path:
        return self.state_dir / network_id

    def ensure(self, spec: NetworkSpec, hosts: Sequence[DhcpHost]) -> None:
        subnets = [
            s for s in spec.subnets if s.enable_dhcp and ipaddress.ip_network(s.cidr).version == 4
        ]
        if not subnets:
            self.delete(spec.network_id)
            return
        ns_dev = self._ensure_port(spec, subnets)
        changed = self._write_files(spec, subnets, hosts)
        argv = self._argv(spec.network_id, ns_dev, subnets)
        pid = self._pid(spec.network_id)
        if pid is not None and _cmdline(pid) != argv:
            self._stop(pid)  # different subnets or flags: restart with the new argv
            pid = None
        if pid is None:
            priv.run(priv.in_netns(self.names.dhcp_namespace(spec.network_id), argv), timeout=15)
            if self._wait_pid(spec.network_id) is None:
                raise DriverError(f"dnsmasq for network {spec.network_id} did not start")
        elif changed:
            os.kill(pid, signal.SIGHUP)  # re-reads the hosts and opts files

    def _ensure_port(self, spec: NetworkSpec, subnets: list[SubnetSpec]) -> str:
        addrs = [f"{server_ip(s)}/{ipaddress.ip_network(s.cidr).prefixlen}" for s in subnets]
        wanted = (spec.mtu, tuple(addrs), spec.dhcp_mac)
        made = self._plumbed.get(spec.network_id)
        if (
            made
            and made[0] == wanted
            and time.monotonic() - made[2] < PLUMBING_TRUSTED_S
            # the veth's host end goes with its namespace: a cheap look, no netns entered
            and netlink.index(self.names.dhcp_host_dev(spec.network_id)) is not None
        ):
            return made[1]
        ns_dev = self._plumb(spec, addrs)
        self._plumbed[spec.network_id] = (wanted, ns_dev, time.monotonic())
        return ns_dev

    def _plumb(self, spec: NetworkSpec, addrs: list[str]) -> str:
        ns = self.names.dhcp_namespace(spec.network_id)
        host_dev = self.names.dhcp_host_dev(spec.network_id)
        ns_dev = self.names.dhcp_ns_dev(spec.network_id)
        bridge = netlink.index(self.names.bridge(spec.network_id))
        if bridge is None:
            raise DriverError(f"dhcp for network {spec.network_id}: no bridge yet")
        netlink.ensure_netns(ns)
        netlink.set_link("lo", ns, state="up")
        netlink.ensure_veth(host_dev, ns_dev, ns)
        netlink.move_to_netns(ns_dev, ns)
        mac = (spec.dhcp_mac or "").lower()
        if mac and netlink.links(ns)[ns_dev]["address"] != mac:
            # the DHCP port's MAC: the one other hosts' tunnel and ARP entries name
            netlink.set_link(ns_dev, ns, address=mac)
        netlink.disable_ipv6(host_dev)
        netlink.set_link(host_dev, master=bridge)
        netlink.set_up(host_dev, mtu=spec.mtu)
        netlink.set_up(ns_dev, ns, mtu=spec.mtu)
        netlink.ensure_addresses(ns_dev, addrs, ns)
        return ns_dev

    def _write_files(
        self, spec: NetworkSpec, subnets: list[SubnetSpec], hosts: Sequence[DhcpHost]
    ) -> bool:
        d = self._dir(spec.network_id)
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)  # dnsmasq re-reads the files after dropping root
        host_lines = [f"{h.mac.lower()},{h.ip},{_hostname(h.hostname)}" for h in hosts]
        opt_lines = [f"tag:subnet{i},option:mtu,{spec.mtu}" for i in range(len(subnets))]
        for i, s in enumerate(subnets):
            opt_lines += subnet_options(f"subnet{i}", s, spec.subnets)
        changed = False
        for name, lines in (("hosts", sorted(host_lines)), ("opts", opt_lines)):
            path = d / name
            text = "".join(line + "\n" for line in lines)
            if not path.exists() or path.read_text() != text:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                tmp.chmod(0o644)
                tmp.replace(path)  # rename: dnsmasq never reads half a file
                changed = True
        return changed

    def _argv(self, network_id: str, ns_dev: str, subnets: list[SubnetSpec]) -> list[str]:
        d = self._dir(network_id)
        argv = [
            "dnsmasq",
            "--conf-file=/dev/null",
            "--no-hosts",
            "--no-resolv",
            "--port=0",
            "--bind-interfaces",
            f"--interface={ns_dev}",
            "--except-interface=lo",
            f"--pid-file={d / 'pid'}",
            f"--dhcp-hostsfile={d / 'hosts'}",
            f"--dhcp-optsfile={d / 'opts'}",
            f"--dhcp-leasefile={d / 'leases'}",
        ]
        for i, s in enumerate(subnets):
            net = ipaddress.ip_network(s.cidr)
            argv.append(
                f"--dhcp-range=set:subnet{i},{net.network_address},static,"
                f"{net.netmask},{LEASE_SECONDS}s"
            )
        return argv

    def _pid(self, network_id: str) -> int | None:
        path = self._dir(network_id) / "pid"
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        cmd = _cmdline(pid)
        # a recycled pid is not ours: it must be dnsmasq with our pid file
        return pid if cmd and f"--pid-file={path}" in cmd else None

    def _wait_pid(self, network_id: str, timeout: float = 5.0) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._pid(network_id)
            if pid is not None:
                return pid
            time.sleep(0.05)
        return None

    def _stop(self, pid: int, timeout: float = 5.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _cmdline(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def delete(self, network_id: str) -> None:
        self._plumbed.pop(network_id, None)
        pid = self._pid(network_id)
        if pid is not None:
            self._stop(pid)
        netlink.delete_link(self.names.dhcp_host_dev(network_id))
        netlink.remove_netns(self.names.dhcp_namespace(network_id))
        shutil.rmtree(self._dir(network_id), ignore_errors=True)

    def list_owned(self) -> frozenset[str]:
        """Namespaces of the form <prefix>qdhcp-<network id>."""
        head = self.names.dhcp_namespace("")
        return frozenset(n for n in netlink.list_netns() if n.startswith(head))

    def served(self, network_id: str) -> tuple[bool, tuple[tuple[str, str], ...]]:
        """Whether dnsmasq runs for the network, and the (mac, ip) of its hosts file."""
        running = self._pid(network_id) is not None
        try:
            lines = (self._dir(network_id) / "hosts").read_text().splitlines()
        except OSError:
            return running, ()
        pairs = tuple((line.split(",")[0], line.split(",")[1]) for line in lines if "," in line)
        return running, pairs

    def running(self) -> dict[str, int]:
        """Network id → pid of every live dnsmasq started under state_dir."""
        out: dict[str, int] = {}
        if self.state_dir.is_dir():
            for d in self.state_dir.iterdir():
                pid = self._pid(d.name)
                if pid is not None:
                    out[d.name] = pid
        return out


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    args = raw.decode(errors="replace").split("\0")[:-1]
    # a zombie has an empty cmdline; a non-dnsmasq pid is someone else's
    return args if args and os.path.basename(args[0]) == "dnsmasq" else None
