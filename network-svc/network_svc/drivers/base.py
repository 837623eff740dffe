"""Desired-state shapes and the Protocols network-agent drives.

Every driver call is level-triggered: it makes the host match the given state and is
idempotent, so network-agent may repeat it after a crash or a lost message.

Example::

    net = NetworkSpec("6f1c…", "vxlan", 1001, 1450, [SubnetSpec("s1", "10.0.0.0/24", "10.0.0.1")])
    bridge = l2.ensure_network(net)          # "brq6f1c…"
    dhcp.ensure(net, [DhcpHost("fa:16:3e:00:00:01", "10.0.0.5", "host-10-0-0-5")])
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, Self

from network_svc.drivers.names import Names

SegmentationType = Literal["local", "flat", "vxlan", "vlan"]
Direction = Literal["ingress", "egress"]


@dataclass(frozen=True)
class SubnetSpec:
    subnet_id: str
    cidr: str
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    dns_nameservers: tuple[str, ...] = ()
    dhcp_server_ip: str | None = (
        None  # None: the first host address from .2 that is not the gateway
    )
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop), DHCP option 121


@dataclass(frozen=True)
class TunnelPeer:
    """Another host's VXLAN endpoint and its ports on the network: (MAC, IPv4 addresses)."""

    vtep: str
    entries: Sequence[tuple[str, Sequence[str]]] = ()


FLOOD_MAC = "00:00:00:00:00:00"


def forwarding_entries(
    peers: Sequence[TunnelPeer],
) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """The FDB entries (mac, vtep) and ARP entries (ipv4 -> mac) that ``peers`` call for:
    an all-zeros entry per peer (flooding goes to the hosts serving the network only)
    and one per remote port."""
    fdb: set[tuple[str, str]] = set()
    arp: dict[str, str] = {}
    for peer in peers:
        vtep = str(ipaddress.ip_address(peer.vtep))
        fdb.add((FLOOD_MAC, vtep))
        for mac, ips in peer.entries:
            fdb.add((mac.lower(), vtep))
            for ip in ips:
                if ipaddress.ip_address(ip).version == 4:
                    arp[ip] = mac.lower()
    return fdb, arp


@dataclass(frozen=True)
class NetworkSpec:
    network_id: str
    segmentation_type: SegmentationType = "local"
    segmentation_id: int | None = None
    mtu: int = 1500
    subnets: Sequence[SubnetSpec] = field(default_factory=tuple)
    # l2-population (VXLAN): every other host serving the network; the uplink's FDB and
    # ARP entries are made to match it. None: no entries are managed (the device learns).
    peers: Sequence[TunnelPeer] | None = None
    # The DHCP port's MAC, for dnsmasq's device (None: the kernel's random one).
    dhcp_mac: str | None = None


@dataclass(frozen=True)
class PortSpec:
    port_id: str
    network_id: str
    mac: str
    fixed_ips: Sequence[str] = ()
    port_security: bool = True
    device: str = ""  # the tap/veth host end to enslave; normally Names.port_device(port_id)


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    hostname: str


@dataclass(frozen=True)
class SecurityGroupRule:
    direction: Direction
    protocol: str | None = None  # "tcp" | "udp" | "icmp" | None for any
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    remote_group_id: str | None = None  # matched against that group's member set


SetKey = tuple[str, str]  # (security group id, ethertype): one member set on the host


class MatchesSet(Protocol):
    """What ``member_sets`` reads of a rule: a driver's, or one as the API sends it."""

    @property
    def remote_group_id(self) -> str | None: ...
    @property
    def ethertype(self) -> str: ...


def member_sets(rules: Iterable[MatchesSet], port_security: bool = True) -> frozenset[SetKey]:
    """The member sets a port's rules match on.

    IPv4 only: the data plane applies rules to IPv4 and drops a secured port's IPv6 whole,
    so an IPv6 remote-group rule references no set.
    """
    if not port_security:
        return frozenset()
    return frozenset(
        (r.remote_group_id, r.ethertype)
        for r in rules
        if r.remote_group_id and r.ethertype == "IPv4"
    )


class DriverError(RuntimeError):
    """A host operation failed; the message names the operation and the object."""


@dataclass(frozen=True)
class DriverConfig:
    """What a driver may need of its host's settings; each takes what it uses."""

    names: Names = field(default_factory=Names)
    # dnsmasq's files (DHCP).
    state_dir: Path | None = None
    # VXLAN source address, and the interface of flat and VLAN networks (L2).
    local_ip: str | None = None
    physical_interface: str | None = None


class Driver(Protocol):
    """What an entry point of ``stackling.network.drivers`` names: a class (or any
    object) that makes its driver from the host's ``DriverConfig``."""

    @classmethod
    def from_config(cls, config: DriverConfig) -> Self: ...


class L2Driver(Protocol):
    def ensure_network(self, spec: NetworkSpec) -> str: ...
    def delete_network(self, network_id: str) -> None: ...
    def plug_port(self, spec: PortSpec) -> None: ...
    def unplug_port(self, port_id: str) -> None: ...
    def list_owned(self) -> frozenset[str]: ...
    def device_exists(self, name: str) -> bool:
        """Whether the hypervisor made the port's device yet (it joins the bridge then)."""
        ...

    def tunnel_entries(self) -> Mapping[str, frozenset[str]]:
        """Each VXLAN uplink's managed entries, ``"<mac> <vtep>"`` and ``"arp <ip> <mac>"``
        (the audit's view of l2-population)."""
        ...


class DhcpDriver(Protocol):
    def ensure(self, spec: NetworkSpec, hosts: Sequence[DhcpHost]) -> None: ...
    def delete(self, network_id: str) -> None: ...
    def list_owned(self) -> frozenset[str]: ...
    def served(self, network_id: str) -> tuple[bool, tuple[tuple[str, str], ...]]:
        """Is dnsmasq running for the network, and the (mac, ip) pairs it leases (audit)."""
        ...


class Firewall(Protocol):
    def ensure_port(self, spec: PortSpec, rules: Sequence[SecurityGroupRule]) -> None:
        """The port's chains; the member sets its rules name must exist first."""
        ...

    def remove_port(self, port_id: str) -> None: ...
    def list_owned(self) -> frozenset[str]: ...
    def ensure_sets(self, members: Mapping[SetKey, Sequence[str]]) -> None:
        """Each set holds exactly the given addresses (of its ethertype)."""
        ...

    def remove_sets(self, keep: Collection[SetKey]) -> int:
        """Destroy our sets not in ``keep`` and no longer referenced by a rule; how many."""
        ...

    def list_sets(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class RouterLeg:
    """One veth of a router: its namespace end holds ``cidrs`` (e.g. "10.0.0.1/24")."""

    port_id: str
    network_id: str
    mac: str
    cidrs: Sequence[str] = ()
    mtu: int = 1500


@dataclass(frozen=True)
class FloatingIpSpec:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class RouterSpec:
    router_id: str
    interfaces: Sequence[RouterLeg] = ()
    gateway: RouterLeg | None = None
    next_hop: str | None = None  # the external subnet's gateway: the default route
    enable_snat: bool = True
    floating_ips: Sequence[FloatingIpSpec] = ()
    # Static routes (destination CIDR, nexthop); a nexthop no leg reaches is not made.
    routes: Sequence[tuple[str, str]] = ()


def static_routes(spec: RouterSpec) -> dict[str, tuple[str, ...]]:
    """The IPv4 routes a router's namespace gets: destination -> its nexthops, sorted
    (several make one multipath route), only nexthops on a subnet one of its legs is on
    (the kernel refuses others; the API keeps them connected, a removed gateway not)."""
    legs = [*spec.interfaces, *([spec.gateway] if spec.gateway else [])]
    nets = [ipaddress.ip_interface(c).network for leg in legs for c in leg.cidrs]
    out: dict[str, set[str]] = {}
    for destination, nexthop in spec.routes:
        dst, via = ipaddress.ip_network(destination), ipaddress.ip_address(nexthop)
        if dst.version == via.version == 4 and any(via in net for net in nets):
            out.setdefault(str(dst), set()).add(str(via))
    return {dst: tuple(sorted(hops, key=ipaddress.ip_address)) for dst, hops in out.items()}


class RouterDriver(Protocol):
    def ensure(self, spec: RouterSpec) -> str: ...
    def delete(self, router_id: str) -> None: ...
    def list_owned(self) -> frozenset[str]: ...
