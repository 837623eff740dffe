"""What network-api and its network-agents say to each other, typed once for both sides.

Two topics:

- ``network`` (``API``): what other services call (``common_rpc.contracts.network``),
  plus ``host_state`` for this service's agents (their reconcile) and ``audit`` for
  operators;
- ``network.<host>`` (``AGENT``): the commands the API sends one host's network-agent.
  Each carries desired state and a generation, never a delta, so a repeated or late
  command changes nothing and a lost one is repaired by the next reconcile.

    wired = await rpc.invoke(agent_topic("network", "cn1"), WIRE_PORT, port_state)
    wired.bridge, wired.device, wired.observed_generation

API version history (of ``network.<host>``):
    1.0 - sync_network(network, generation) -> {network_id, observed_generation,
          applied, bridge, mtu}
          wire_port(network, port, rules, generation) -> {port_id,
          observed_generation, applied, bridge, mtu, mac, device}
          unwire_port(port_id) -> {port_id, unwired}
    1.1 - sync_router(router, generation) -> {router_id, observed_generation, applied,
          namespace}; ``router`` is ``{"router_id", "absent": True}`` once deleted
    1.2 - inventory() -> {prefix, links, dhcp, chains, routers}: what the host has (audit)
    1.3 - wire_port(..., remote_groups={group_id: [address, ...]}): rules naming a
          ``remote_group_id`` match that group's member set; inventory() adds ``sets``;
          sync_members(remote_groups) -> {sets}: refill the sets the host already has
          delete_network(network_id) -> {network_id, deleted}: a deleted network leaves
    1.4 - network states carry, per host, ``dhcp`` (this host runs the network's DHCP
          server), ``dhcp_mac`` (the DHCP port's MAC, dnsmasq's device takes it) and
          ``peers`` (l2-population: each other host serving a VXLAN network, its tunnel
          endpoint and the ports behind it, for the FDB and ARP entries); inventory()
          adds ``tunnels`` (the entries each VXLAN device has)
    1.5 - router states carry ``routes`` (extraroute: destination and nexthop, made
          the namespace's static routes); an agent before 1.5 ignores them
"""

from __future__ import annotations

from typing import Literal

from common_rpc.audit import AuditReport
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.contracts.network import NETWORK
from common_rpc.methods import Contract, Empty, Message, Method

VERSION = "1.5"

# ---------------------------------------------------------------- desired state


class HostRoute(Message):
    destination: str
    nexthop: str


class SubnetState(Message):
    subnet_id: str
    cidr: str
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    dns_nameservers: list[str] = []
    host_routes: list[HostRoute] = []
    # dnsmasq's address on the subnet (the DHCP port's); None: the agent picks one.
    dhcp_server_ip: str | None = None


class DhcpHost(Message):
    mac: str
    ip: str
    hostname: str


class TunnelEntry(Message):
    """A port behind a tunnel endpoint: its MAC (an FDB entry) and IPv4 addresses (ARP)."""

    mac: str
    ips: list[str] = []


class TunnelPeer(Message):
    """Another host serving the network (l2-population): where its ports are reached."""

    host: str
    # Its VXLAN endpoint: the underlay address its network-agent reports.
    vtep: str
    entries: list[TunnelEntry] = []


class NetworkState(Message):
    """A network as one host serves it: bridge and uplink, dnsmasq's subnets and hosts,
    and (VXLAN) the other hosts' tunnel endpoints and ports."""

    network_id: str
    segmentation_type: Literal["local", "flat", "vxlan", "vlan"] = "local"
    segmentation_id: int | None = None
    mtu: int = 1500
    subnets: list[SubnetState] = []
    # Every port of the network with an address, but dnsmasq's own.
    dhcp_hosts: list[DhcpHost] = []
    generation: int = 0
    # Whether this host runs the network's DHCP server (the network node the DHCP port is
    # bound to; every host when the port is bound to none).
    dhcp: bool = True
    # The DHCP port's MAC: dnsmasq's device takes it, so peers reach it by its entry.
    dhcp_mac: str | None = None
    # VXLAN only: the other hosts serving the network, the whole list (FDB and ARP
    # entries are made to match it); None from an API before 1.4 (the host learns).
    peers: list[TunnelPeer] | None = None


class PortInfo(Message):
    """What the host wires of a port: its device on the bridge and its firewall."""

    port_id: str
    network_id: str
    mac: str
    fixed_ips: list[str] = []
    port_security: bool = True


class Rule(Message):
    """A security group rule of the port; one naming a remote group matches its members."""

    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


class PortState(Message):
    """A port's whole desired state on its host (``wire_port``'s request)."""

    network: NetworkState
    port: PortInfo
    rules: list[Rule] = []
    # Each group the rules name as remote -> its ports' addresses (one member set each).
    remote_groups: dict[str, list[str]] = {}
    generation: int


class RouterInterface(Message):
    """A router's leg on a subnet: it holds ``cidrs`` (the subnet's gateway, say)."""

    port_id: str
    network_id: str
    subnet_id: str
    mac: str
    cidrs: list[str] = []


class RouterGateway(Message):
    """A router's leg on its external network; ``next_hop`` is the default route."""

    port_id: str
    network_id: str
    mac: str
    cidrs: list[str] = []
    next_hop: str | None = None


class FloatingIpMapping(Message):
    floating_ip: str
    fixed_ip: str


class RouterState(Message):
    """A router's namespace: legs, gateway, NAT and the networks its legs join.

    ``absent`` asks for its removal (the router is gone from the database).
    """

    router_id: str
    generation: int = 0
    admin_state_up: bool = True
    enable_snat: bool = True
    gateway: RouterGateway | None = None
    interfaces: list[RouterInterface] = []
    floating_ips: list[FloatingIpMapping] = []
    # Static routes (extraroute), each nexthop on a subnet one of its legs is on.
    routes: list[HostRoute] = []
    networks: list[NetworkState] = []
    absent: bool = False

    @property
    def wanted(self) -> bool:
        """False when the router must not exist on the host (deleted or down)."""
        return not self.absent and self.admin_state_up


class HostState(Message):
    """Everything bound to one host: what its agent must have, nothing more."""

    host: str
    networks: list[NetworkState] = []
    ports: list[PortState] = []
    # None: the host's routers are left as they are (an API that does not send them).
    routers: list[RouterState] | None = None


# ---------------------------------------------------------------- network: host_state, audit

HOST_STATE = Method(
    "host_state", HostStateRequest, HostState, doc="the host's desired state (agents only)"
)
AUDIT = Method("audit", Empty, AuditReport, doc="every host against the database (operators)")

# The API's topic: the cross-service contract and what only this service's parts use.
API = Contract("network", [*NETWORK.methods, HOST_STATE, AUDIT])

# ---------------------------------------------------------------- network.<host>: commands


class SyncNetwork(Message):
    network: NetworkState
    generation: int


class NetworkSynced(Message):
    network_id: str
    observed_generation: int
    applied: bool
    bridge: str
    mtu: int


class PortWired(Message):
    """The port's state on the host; the hypervisor adds ``device`` to ``bridge``."""

    port_id: str
    observed_generation: int
    applied: bool
    bridge: str
    mtu: int
    mac: str
    device: str


class PortRef(Message):
    port_id: str


class PortUnwired(Message):
    port_id: str
    unwired: bool = True


class NetworkRef(Message):
    network_id: str


class NetworkDeleted(Message):
    network_id: str
    deleted: bool = True


class SyncMembers(Message):
    # group id -> its members' addresses, for the sets the host already has
    remote_groups: dict[str, list[str]]


class MembersSynced(Message):
    sets: int


class SyncRouter(Message):
    router: RouterState
    generation: int


class RouterSynced(Message):
    router_id: str
    observed_generation: int
    applied: bool
    namespace: str


class DhcpServed(Message):
    running: bool
    # (mac, ip) pairs dnsmasq leases
    hosts: list[tuple[str, str]] = []


class Inventory(Message):
    """What the host has of ours, named as the kernel has them (with the agent's prefix)."""

    prefix: str
    links: list[str] = []
    dhcp: dict[str, DhcpServed] = {}
    chains: list[str] = []
    # None: an agent before 1.3, which does not list its member sets.
    sets: list[str] | None = None
    routers: list[str] = []
    # VXLAN device -> its forwarding entries, "<mac> <vtep>" and "arp <ip> <mac>";
    # None: an agent before 1.4.
    tunnels: dict[str, list[str]] | None = None


SYNC_NETWORK = Method(
    "sync_network", SyncNetwork, NetworkSynced, doc="bridge, uplink and DHCP of one network"
)
WIRE_PORT = Method(
    "wire_port",
    PortState,
    PortWired,
    doc="the network, then member sets and firewall, then the device on the bridge",
)
UNWIRE_PORT = Method("unwire_port", PortRef, PortUnwired, doc="rules off, device off the bridge")
SYNC_MEMBERS = Method(
    "sync_members", SyncMembers, MembersSynced, doc="new members of the sets the host has"
)
DELETE_NETWORK = Method(
    "delete_network", NetworkRef, NetworkDeleted, doc="bridge, uplink and DHCP namespace go"
)
SYNC_ROUTER = Method("sync_router", SyncRouter, RouterSynced, doc="namespace, legs and NAT")
INVENTORY = Method("inventory", Empty, Inventory, doc="what the host has (the audit)")

AGENT = Contract(
    "network.<host>",
    [
        SYNC_NETWORK,
        WIRE_PORT,
        UNWIRE_PORT,
        SYNC_MEMBERS,
        DELETE_NETWORK,
        SYNC_ROUTER,
        INVENTORY,
    ],
)
