"""Simulated hosts: a network namespace each, on a shared underlay, with their own agents.

Layout (P = the fabric's prefix, i = 1..9; every name global to the machine carries P)::

    root namespace (the controller: APIs, broker, databases)
      Pfab   bridge, the underlay; holds the controller's address (.1)
      Pext   bridge, the provider network "physnet1" (no address in the root namespace)
      the relay: broker on <controller>:5672 -> 127.0.0.1:5672 (relay.py)
    Pout     namespace: "the outside", eth0 on Pext with the external gateway (.1)
    P<i>host namespace: host i
      fab0   veth to Pfab (root end Pf<i>), the host's underlay address (.10+i):
             its VXLAN endpoint, and the way to the controller
      ext0   veth to Pext (root end Px<i>): the host's interface of physnet1 (flat)
      network-agent (NETWORK_AGENT_NAME_PREFIX=P<i>) and the other agents, each
      started with ``nsenter --net``: the bridges, VXLAN devices, iptables chains and
      ipsets it makes are this namespace's; its DHCP and router namespaces are named
      P<i>qdhcp-..., P<i>qrouter-... (named namespaces are global: the prefix says whose)

A host failure (``kill_host``) SIGKILLs every process of the host's namespaces and
deletes the host's namespace: its bridges, tunnels, firewall and the veths of its DHCP
and router namespaces go with it; the emptied ``P<i>q*`` namespaces and its state
directory are what the host "still holds" when it comes back (``host_up`` again), which
its agent's reconcile removes or rebuilds. The root namespace's FORWARD chain jumps to
``Pfabric`` for the two bridges, where one rule per host counts the VXLAN packets it
sends over the underlay (``vxlan_packets``).

    fabric = Fabric(FabricConfig(prefix="sk"))
    fabric.up()                                   # bridges, the outside, the counters
    host = fabric.host_up(1)                      # SimHost: netns sk1host, 198.19.0.11
    proc = fabric.start_agent(host, "network-agent", env)
    fabric.kill_host(1); fabric.host_up(1)        # a failure, and the host back
    fabric.down()                                 # everything above, and the relay
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from network_svc.drivers.linux import netlink, priv
from network_svc.hosts import hypervisor

IPT = ["iptables", "-w", "10"]
VXLAN_PORT = 4789
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,3}$")
MAX_HOSTS = 9


@dataclass(frozen=True)
class FabricConfig:
    # 1-4 characters: every object of the fabric and of its hosts starts with it.
    prefix: str = "sk"
    # The underlay: the controller at .1, host i at .10+i.
    underlay: str = "198.19.0.0/24"
    # The provider (external) network: the outside at .1, the gateway of its subnet.
    external: str = "203.0.113.0/24"
    # Host i's name (its agents' STACKLING_HOST); "{i}" is its number.
    host_name: str = "host{i}"
    # Where hosts keep their state: <state_dir>/<host name>/.
    state_dir: Path = Path("data/hosts")
    # The broker the relay forwards to (host:port in the root namespace).
    broker: str = "127.0.0.1:5672"
    # The broker's virtual host the agents use ("": the default one): a test's stack on
    # a virtual host of its own gets its hosts' agents there too.
    amqp_vhost: str = ""

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"fabric prefix must match {_PREFIX.pattern}: {self.prefix!r}")

    @property
    def bridge(self) -> str:
        return f"{self.prefix}fab"

    @property
    def external_bridge(self) -> str:
        return f"{self.prefix}ext"

    @property
    def outside(self) -> str:
        """The namespace standing for the world beyond the provider network."""
        return f"{self.prefix}out"

    @property
    def chain(self) -> str:
        return f"{self.prefix}fabric"

    def _at(self, cidr: str, offset: int) -> str:
        net = ipaddress.ip_network(cidr)
        return str(net.network_address + offset)

    @property
    def controller_ip(self) -> str:
        return self._at(self.underlay, 1)

    @property
    def outside_ip(self) -> str:
        return self._at(self.external, 1)

    def host(self, index: int) -> SimHost:
        if not 1 <= index <= MAX_HOSTS:
            raise ValueError(f"host numbers are 1-{MAX_HOSTS}: {index}")
        prefix = f"{self.prefix}{index}"
        name = self.host_name.format(i=index)
        return SimHost(
            index=index,
            name=name,
            prefix=prefix,
            netns=f"{prefix}host",
            underlay_ip=self._at(self.underlay, 10 + index),
            prefixlen=ipaddress.ip_network(self.underlay).prefixlen,
            fabric_end=f"{self.prefix}f{index}",
            external_end=f"{self.prefix}x{index}",
            state_dir=(self.state_dir / name).absolute(),
        )


@dataclass(frozen=True)
class SimHost:
    index: int
    name: str
    # The name prefix of everything its network-agent makes (NETWORK_AGENT_NAME_PREFIX).
    prefix: str
    netns: str
    underlay_ip: str
    prefixlen: int
    fabric_end: str
    external_end: str
    state_dir: Path

    # Inside the host's namespace.
    FABRIC_DEV = "fab0"
    EXTERNAL_DEV = "ext0"

    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def owned_namespaces(self) -> list[str]:
        """The host's namespace and every namespace its agent named (DHCP, routers)."""
        mine = (self.prefix + "qdhcp-", self.prefix + "qrouter-")
        return sorted(ns for ns in netlink.list_netns() if ns == self.netns or ns.startswith(mine))

    def in_host(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run in the host's network namespace only (the machine's file system)."""
        return ["nsenter", f"--net={self.netns_path()}", "--", *argv]

    def agent_env(self, config: FabricConfig) -> dict[str, str]:
        """What makes an agent this host's: its name, broker, data and kernel names."""
        return {
            "STACKLING_HOST": self.name,
            "STACKLING_AMQP_URL": (
                f"amqp://guest:guest@{config.controller_ip}:5672/{config.amqp_vhost}"
            ),
            "STACKLING_DATA_DIR": str(self.state_dir),
            "NETWORK_AGENT_NAME_PREFIX": self.prefix,
            "NETWORK_AGENT_LOCAL_IP": self.underlay_ip,
            "NETWORK_AGENT_PHYSICAL_INTERFACE": self.EXTERNAL_DEV,
            "NETWORK_AGENT_STATE_DIR": str(self.state_dir / "network-agent"),
            "VOLUME_AGENT_PORTAL": f"{config.controller_ip}:3260",
            "COMPUTE_AGENT_LIBVIRT_URI": libvirt_uri(self),
        }


def _veth_into(root_end: str, inner: str, namespace: str, bridge: str) -> None:
    """A veth from ``bridge`` into ``namespace``, named ``inner`` there (a name the root
    namespace may have too: it is made under the root end's name + "p", then renamed)."""
    if netlink.index(inner, namespace) is None:
        netlink.delete_link(root_end)  # half-made pair, or one whose peer's namespace went
        scratch = f"{root_end}p"
        netlink.ensure_link(root_end, "veth", peer=scratch)
        netlink.move_to_netns(scratch, namespace)
        netlink.rename_link(scratch, inner, namespace)
    netlink.disable_ipv6(root_end)
    netlink.set_link(root_end, master=netlink.index(bridge))
    netlink.set_up(root_end)
    netlink.set_up(inner, namespace)


def _ok(argv: list[str]) -> bool:
    try:
        priv.run(argv, timeout=15)
    except priv.CommandError:
        return False
    return True


class Fabric:
    def __init__(self, config: FabricConfig) -> None:
        self.config = config
        self.relay: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ the fabric

    def up(self) -> None:
        """Bridges, the outside namespace and the counting chain (idempotent)."""
        c = self.config
        netlink.ensure_link(c.bridge, "bridge")
        netlink.set_up(c.bridge)
        underlay = ipaddress.ip_network(c.underlay)
        netlink.ensure_addresses(c.bridge, [f"{c.controller_ip}/{underlay.prefixlen}"])
        netlink.ensure_link(c.external_bridge, "bridge")
        netlink.set_up(c.external_bridge)
        netlink.ensure_netns(c.outside)
        netlink.set_link("lo", c.outside, state="up")
        _veth_into(f"{c.prefix}xo", "eth0", c.outside, c.external_bridge)
        external = ipaddress.ip_network(c.external)
        netlink.ensure_addresses("eth0", [f"{c.outside_ip}/{external.prefixlen}"], c.outside)
        self._ensure_chain()

    def _ensure_chain(self) -> None:
        c = self.config
        if not _ok([*IPT, "-S", c.chain]):
            priv.run([*IPT, "-N", c.chain], timeout=15)
        rules = [
            [
                "-p", "udp", "--dport", str(VXLAN_PORT), "-m", "physdev", "--physdev-in",
                c.host(i).fabric_end, "-j", "ACCEPT",
            ]
            for i in range(1, MAX_HOSTS + 1)
        ]  # fmt: skip
        rules.append(["-j", "ACCEPT"])
        have = priv.run([*IPT, "-S", c.chain], timeout=15).splitlines()[1:]
        want = [" ".join(["-A", c.chain, *r]) for r in rules]
        if have != want:
            priv.run([*IPT, "-F", c.chain], timeout=15)
            for rule in rules:
                priv.run([*IPT, "-A", c.chain, *rule], timeout=15)
        for bridge in (c.bridge, c.external_bridge):
            jump = ["FORWARD", "-i", bridge, "-j", c.chain]
            if not _ok([*IPT, "-C", *jump]):
                priv.run([*IPT, "-I", *jump], timeout=15)

    def vxlan_packets(self) -> dict[int, int]:
        """VXLAN packets each host sent over the underlay so far (host number -> count)."""
        c = self.config
        out = priv.run([*IPT, "-L", c.chain, "-v", "-x", "-n"], timeout=15)
        counts: dict[int, int] = {}
        for i in range(1, MAX_HOSTS + 1):
            end = c.host(i).fabric_end
            for line in out.splitlines():
                fields = line.split()
                if f"--physdev-in {end} " in line + " " and "dpt:4789" in line:
                    counts[i] = int(fields[0])
        return counts

    def start_relay(self) -> subprocess.Popen[bytes]:
        """The broker on the controller's underlay address (relay.py), until ``down``."""
        listen = f"{self.config.controller_ip}:5672"
        argv = [sys.executable, "-m", "network_svc.hosts.relay", listen, self.config.broker]
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.config.state_dir / "relay.log").open("ab") as out:
            self.relay = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _listening(self.config.controller_ip, 5672):
                return self.relay
            if self.relay.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the broker relay did not start on {listen}")

    def down(self, hosts: Sequence[int] = range(1, MAX_HOSTS + 1)) -> None:
        """Every host, the outside, the bridges, the chain and the relay (idempotent)."""
        c = self.config
        for index in hosts:
            self.host_down(index)
        if self.relay is not None:
            _stop(self.relay.pid)
            self.relay = None
        netlink.remove_netns(c.outside)
        netlink.delete_link(f"{c.prefix}xo")
        for bridge in (c.bridge, c.external_bridge):
            while _ok([*IPT, "-D", "FORWARD", "-i", bridge, "-j", c.chain]):
                pass
            netlink.delete_link(bridge)
        if _ok([*IPT, "-S", c.chain]):
            priv.run([*IPT, "-F", c.chain], timeout=15)
            priv.run([*IPT, "-X", c.chain], timeout=15)

    # ------------------------------------------------------------ hosts

    def host_up(self, index: int) -> SimHost:
        """The host's namespace, its underlay and provider interfaces (idempotent)."""
        host = self.config.host(index)
        host.state_dir.mkdir(parents=True, exist_ok=True)
        host.state_dir.chmod(0o755)  # dnsmasq reads its files after dropping root
        netlink.ensure_netns(host.netns)
        netlink.set_link("lo", host.netns, state="up")
        _veth_into(host.fabric_end, host.FABRIC_DEV, host.netns, self.config.bridge)
        netlink.ensure_addresses(
            host.FABRIC_DEV, [f"{host.underlay_ip}/{host.prefixlen}"], host.netns
        )
        _veth_into(host.external_end, host.EXTERNAL_DEV, host.netns, self.config.external_bridge)
        return host

    def start_agent(
        self,
        host: SimHost,
        binary: str,
        env: Mapping[str, str] | None = None,
        *,
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """``binary`` (a console script next to this Python) in the host's namespace, with
        this host's settings over ``env`` (default: this process's environment)."""
        path = Path(sys.executable).parent / binary
        argv = host.in_host([str(path) if path.exists() else binary])
        merged = {**(os.environ if env is None else env), **host.agent_env(self.config)}
        out = (log or host.state_dir / f"{binary}.log").open("ab")
        try:
            return subprocess.Popen(
                argv, env=merged, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            out.close()

    def start_libvirt(self, host: SimHost, timeout: float = 30.0) -> str:
        """virtlogd and libvirtd of this host (hypervisor.py); their URI once they answer."""
        directory = host.state_dir / "libvirt"
        hypervisor.prepare(directory)
        argv = host.in_host(
            ["unshare", "--mount", "--propagation", "slave", sys.executable, "-m",
             "network_svc.hosts.hypervisor", str(directory)]
        )  # fmt: skip
        with (host.state_dir / "libvirtd.log").open("ab") as out:
            subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=True)
        uri = libvirt_uri(host)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ok(["virsh", "-c", uri, "version"]):
                return uri
            time.sleep(0.2)
        raise RuntimeError(f"libvirtd of {host.name} does not answer at {uri}")

    def pids(self, index: int) -> list[int]:
        """Every process in the host's namespaces (agents, dnsmasq, guests)."""
        host = self.config.host(index)
        found: set[int] = set()
        for ns in host.owned_namespaces():
            out = priv.run(["ip", "netns", "pids", ns], timeout=15, check=False)
            found |= {int(p) for p in out.split()}
        return sorted(found)

    def kill_host(self, index: int) -> list[int]:
        """A host failure: SIGKILL all its processes, delete its namespace. The emptied
        DHCP and router namespaces and its state directory stay (what it still holds)."""
        host = self.config.host(index)
        killed = self.pids(index)
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        netlink.remove_netns(host.netns)
        netlink.delete_link(host.fabric_end)  # went with the namespace; no harm
        netlink.delete_link(host.external_end)
        return killed

    def host_down(self, index: int) -> None:
        """Stop the host's processes (SIGTERM, then SIGKILL), remove all it has."""
        host = self.config.host(index)
        for pid in self.pids(index):
            _stop(pid)
        for ns in host.owned_namespaces():
            netlink.remove_netns(ns)
        netlink.delete_link(host.fabric_end)
        netlink.delete_link(host.external_end)

    def hosts(self) -> list[SimHost]:
        """The hosts that are up (their namespace exists)."""
        present = set(netlink.list_netns())
        hosts = [self.config.host(i) for i in range(1, MAX_HOSTS + 1)]
        return [h for h in hosts if h.netns in present]


def libvirt_uri(host: SimHost) -> str:
    """The host's own libvirtd (``Fabric.start_libvirt``)."""
    return f"qemu:///system?socket={hypervisor.socket_path(host.state_dir / 'libvirt')}"


def _listening(ip: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((ip, port)) == 0


def _stop(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if _zombie(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
