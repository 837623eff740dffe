"""In-memory drivers with the same Protocols; they record desired state for API tests.

Example::

    l2, dhcp, fw = FakeL2(), FakeDhcp(), FakeFirewall()
    l2.ensure_network(NetworkSpec("n1"))    # "brqn1"-style name, nothing touches the host
    assert l2.networks["n1"].network_id == "n1"
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from network_svc.drivers.base import (
    DhcpHost,
    DriverConfig,
    DriverError,
    NetworkSpec,
    PortSpec,
    RouterSpec,
    SecurityGroupRule,
    SetKey,
    forwarding_entries,
    member_sets,
    static_routes,
)
from network_svc.drivers.names import Names


@dataclass
class FakeL2:
    names: Names = field(default_factory=Names)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    ports: dict[str, PortSpec] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # network id -> its uplink's FDB entries (mac, vtep) and ARP entries (ip -> mac)
    forwarding: dict[str, tuple[set[tuple[str, str]], dict[str, str]]] = field(default_factory=dict)
    forwarding_changes: int = 0

    @classmethod
    def from_config(cls, config: DriverConfig) -> FakeL2:
        return cls(config.names)

    def ensure_network(self, spec: NetworkSpec) -> str:
        self.calls.append(f"ensure_network:{spec.network_id}")
        self.networks[spec.network_id] = spec
        if spec.segmentation_type == "vxlan" and spec.peers is not None:
            fdb, arp = forwarding_entries(spec.peers)
            old_fdb, old_arp = self.forwarding.get(spec.network_id, (set(), {}))
            self.forwarding_changes += len(fdb ^ old_fdb) + len(
                set(arp.items()) ^ set(old_arp.items())
            )
            self.forwarding[spec.network_id] = (fdb, arp)
        return self.names.bridge(spec.network_id)

    def tunnel_entries(self) -> Mapping[str, frozenset[str]]:
        out = {}
        for network_id, (fdb, arp) in self.forwarding.items():
            spec = self.networks.get(network_id)
            if spec is not None and spec.segmentation_id is not None:
                out[self.names.vxlan(spec.segmentation_id)] = frozenset(
                    [f"{mac} {vtep}" for mac, vtep in fdb]
                    + [f"arp {ip} {mac}" for ip, mac in arp.items()]
                )
        return out

    def delete_network(self, network_id: str) -> None:
        self.calls.append(f"delete_network:{network_id}")
        self.networks.pop(network_id, None)
        self.forwarding.pop(network_id, None)

    def plug_port(self, spec: PortSpec) -> None:
        self.calls.append(f"plug_port:{spec.port_id}")
        if spec.network_id not in self.networks:
            raise DriverError(f"plug {spec.port_id}: network {spec.network_id} has no bridge")
        self.ports[spec.port_id] = spec

    def unplug_port(self, port_id: str) -> None:
        self.calls.append(f"unplug_port:{port_id}")
        self.ports.pop(port_id, None)

    def list_owned(self) -> frozenset[str]:
        return frozenset(self.names.bridge(n) for n in self.networks)

    def device_exists(self, name: str) -> bool:
        """The fakes touch no kernel: no device of theirs ever exists."""
        return False


@dataclass
class FakeDhcp:
    names: Names = field(default_factory=Names)
    networks: dict[str, tuple[NetworkSpec, tuple[DhcpHost, ...]]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: DriverConfig) -> FakeDhcp:
        return cls(config.names)

    def ensure(self, spec: NetworkSpec, hosts: Sequence[DhcpHost]) -> None:
        if not any(s.enable_dhcp for s in spec.subnets):
            self.delete(spec.network_id)
            return
        self.networks[spec.network_id] = (spec, tuple(hosts))

    def delete(self, network_id: str) -> None:
        self.networks.pop(network_id, None)

    def list_owned(self) -> frozenset[str]:
        return frozenset(self.names.dhcp_namespace(n) for n in self.networks)

    def served(self, network_id: str) -> tuple[bool, tuple[tuple[str, str], ...]]:
        if network_id not in self.networks:
            return False, ()
        return True, tuple((h.mac, h.ip) for h in self.networks[network_id][1])


@dataclass
class FakeFirewall:
    names: Names = field(default_factory=Names)
    ports: dict[str, tuple[PortSpec, tuple[SecurityGroupRule, ...]]] = field(default_factory=dict)
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: DriverConfig) -> FakeFirewall:
        return cls(config.names)

    def ensure_port(self, spec: PortSpec, rules: Sequence[SecurityGroupRule]) -> None:
        for group_id, ethertype in member_sets(rules, spec.port_security):
            if self.names.ipset(group_id, ethertype) not in self.sets:
                raise DriverError(f"port {spec.port_id}: no member set of group {group_id}")
        self.ports[spec.port_id] = (spec, tuple(rules))

    def ensure_sets(self, members: Mapping[SetKey, Sequence[str]]) -> None:
        for (group_id, ethertype), addresses in members.items():
            self.sets[self.names.ipset(group_id, ethertype)] = tuple(sorted(addresses))

    def remove_sets(self, keep: Collection[SetKey]) -> int:
        used = {
            self.names.ipset(g, e)
            for spec, rules in self.ports.values()
            for g, e in member_sets(rules, spec.port_security)
        }
        wanted = {self.names.ipset(g, e) for g, e in keep} | used
        stale = set(self.sets) - wanted
        for name in stale:
            del self.sets[name]
        return len(stale)

    def list_sets(self) -> frozenset[str]:
        return frozenset(self.sets)

    def remove_port(self, port_id: str) -> None:
        self.ports.pop(port_id, None)

    def list_owned(self) -> frozenset[str]:
        return frozenset(self.names.chain(k, p) for p in self.ports for k in ("a", "i", "o", "s"))


@dataclass
class FakeRouter:
    names: Names = field(default_factory=Names)
    routers: dict[str, RouterSpec] = field(default_factory=dict)
    # router id -> the static routes its namespace would have (destination -> nexthops)
    tables: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: DriverConfig) -> FakeRouter:
        return cls(config.names)

    def ensure(self, spec: RouterSpec) -> str:
        self.routers[spec.router_id] = spec
        self.tables[spec.router_id] = static_routes(spec)
        return self.names.router_namespace(spec.router_id)

    def delete(self, router_id: str) -> None:
        self.routers.pop(router_id, None)
        self.tables.pop(router_id, None)

    def list_owned(self) -> frozenset[str]:
        return frozenset(self.names.router_namespace(r) for r in self.routers)
