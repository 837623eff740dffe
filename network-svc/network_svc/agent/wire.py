"""Desired state as the API sends it (``network_svc.contracts``) turned into the drivers'
dataclasses (``network_svc.drivers.base``).

    spec, hosts = network_spec(state.network)
    port = port_spec(state.port, names.port_device(state.port.port_id))
    rules = rules_of(state.rules)
    router = router_spec(router_state)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from network_svc.contracts import (
    NetworkState,
    PortInfo,
    RouterGateway,
    RouterInterface,
    RouterState,
    Rule,
)
from network_svc.drivers.base import (
    DhcpHost,
    FloatingIpSpec,
    NetworkSpec,
    PortSpec,
    RouterLeg,
    RouterSpec,
    SecurityGroupRule,
    SetKey,
    SubnetSpec,
    TunnelPeer,
)


def network_spec(network: NetworkState) -> tuple[NetworkSpec, tuple[DhcpHost, ...]]:
    subnets = tuple(
        SubnetSpec(
            subnet_id=s.subnet_id,
            cidr=s.cidr,
            gateway_ip=s.gateway_ip,
            enable_dhcp=s.enable_dhcp,
            dns_nameservers=tuple(s.dns_nameservers),
            dhcp_server_ip=s.dhcp_server_ip,
            host_routes=tuple((r.destination, r.nexthop) for r in s.host_routes),
        )
        for s in network.subnets
    )
    peers = None
    if network.peers is not None:
        peers = tuple(
            TunnelPeer(p.vtep, tuple((e.mac, tuple(e.ips)) for e in p.entries))
            for p in network.peers
        )
    spec = NetworkSpec(
        network_id=network.network_id,
        segmentation_type=network.segmentation_type,
        segmentation_id=network.segmentation_id,
        mtu=network.mtu,
        subnets=subnets,
        peers=peers,
        dhcp_mac=network.dhcp_mac,
    )
    hosts = tuple(DhcpHost(h.mac, h.ip, h.hostname) for h in network.dhcp_hosts)
    return spec, hosts


def port_spec(port: PortInfo, device: str) -> PortSpec:
    return PortSpec(
        port_id=port.port_id,
        network_id=port.network_id,
        mac=port.mac,
        fixed_ips=tuple(port.fixed_ips),
        port_security=port.port_security,
        device=device,
    )


def rules_of(rules: Sequence[Rule]) -> tuple[SecurityGroupRule, ...]:
    return tuple(
        SecurityGroupRule(
            direction=r.direction,
            protocol=r.protocol,
            port_range_min=r.port_range_min,
            port_range_max=r.port_range_max,
            remote_ip_prefix=r.remote_ip_prefix,
            ethertype=r.ethertype,
            remote_group_id=r.remote_group_id,
        )
        for r in rules
    )


def set_members(
    keys: frozenset[SetKey], remote_groups: Mapping[str, Sequence[str]] | None
) -> dict[SetKey, tuple[str, ...]]:
    """The addresses of each member set a port needs (a group absent from the map: none)."""
    groups = remote_groups or {}
    return {key: tuple(groups.get(key[0]) or ()) for key in keys}


def _leg(leg: RouterInterface | RouterGateway, mtus: Mapping[str, int]) -> RouterLeg:
    return RouterLeg(
        port_id=leg.port_id,
        network_id=leg.network_id,
        mac=leg.mac,
        cidrs=tuple(leg.cidrs),
        mtu=mtus.get(leg.network_id, 1500),
    )


def router_spec(router: RouterState) -> RouterSpec:
    mtus = {n.network_id: n.mtu for n in router.networks}
    gateway = router.gateway
    return RouterSpec(
        router_id=router.router_id,
        interfaces=tuple(_leg(leg, mtus) for leg in router.interfaces),
        gateway=_leg(gateway, mtus) if gateway else None,
        next_hop=gateway.next_hop if gateway else None,
        enable_snat=router.enable_snat,
        floating_ips=tuple(FloatingIpSpec(f.floating_ip, f.fixed_ip) for f in router.floating_ips),
        routes=tuple((r.destination, r.nexthop) for r in router.routes),
    )
