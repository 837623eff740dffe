"""The JSON shapes of desired state on the ``network.<host>`` topic, and back to specs.

The API builds them from its DB (``network_svc.agent.desired``); the agent turns them
into the drivers' dataclasses::

    net = {"network_id": "n1", "segmentation_type": "local", "segmentation_id": None,
           "mtu": 1500, "subnets": [{"subnet_id": "s1", "cidr": "10.0.0.0/24",
           "gateway_ip": "10.0.0.1", "enable_dhcp": True, "dns_nameservers": [],
           "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}]}],
           "dhcp_hosts": [{"mac": "fa:16:3e:00:00:01", "ip": "10.0.0.5",
           "hostname": "host-10-0-0-5"}], "generation": 3}
    spec, hosts = network_spec(net)

A port's rules may name a remote group (``"remote_group_id"``); ``remote_groups`` maps
each such group to its members' addresses: ``{"sg1": ["10.0.0.5", "10.0.0.6"]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from network_svc.drivers.base import (
    DhcpHost,
    NetworkSpec,
    PortSpec,
    SecurityGroupRule,
    SetKey,
    SubnetSpec,
)


def network_spec(data: dict[str, Any]) -> tuple[NetworkSpec, tuple[DhcpHost, ...]]:
    subnets = tuple(
        SubnetSpec(
            subnet_id=s["subnet_id"],
            cidr=s["cidr"],
            gateway_ip=s.get("gateway_ip"),
            enable_dhcp=bool(s.get("enable_dhcp", True)),
            dns_nameservers=tuple(s.get("dns_nameservers") or ()),
            dhcp_server_ip=s.get("dhcp_server_ip"),
            host_routes=tuple((r["destination"], r["nexthop"]) for r in s.get("host_routes") or ()),
        )
        for s in data.get("subnets") or ()
    )
    spec = NetworkSpec(
        network_id=data["network_id"],
        segmentation_type=data.get("segmentation_type", "local"),
        segmentation_id=data.get("segmentation_id"),
        mtu=int(data.get("mtu", 1500)),
        subnets=subnets,
    )
    hosts = tuple(DhcpHost(h["mac"], h["ip"], h["hostname"]) for h in data.get("dhcp_hosts") or ())
    return spec, hosts


def port_spec(data: dict[str, Any], device: str) -> PortSpec:
    return PortSpec(
        port_id=data["port_id"],
        network_id=data["network_id"],
        mac=data["mac"],
        fixed_ips=tuple(data.get("fixed_ips") or ()),
        port_security=bool(data.get("port_security", True)),
        device=device,
    )


def rules_of(data: Sequence[dict[str, Any]]) -> tuple[SecurityGroupRule, ...]:
    return tuple(
        SecurityGroupRule(
            direction=r["direction"],
            protocol=r.get("protocol"),
            port_range_min=r.get("port_range_min"),
            port_range_max=r.get("port_range_max"),
            remote_ip_prefix=r.get("remote_ip_prefix"),
            ethertype=r.get("ethertype", "IPv4"),
            remote_group_id=r.get("remote_group_id"),
        )
        for r in data
    )


def set_members(
    keys: frozenset[SetKey], remote_groups: dict[str, Sequence[str]] | None
) -> dict[SetKey, tuple[str, ...]]:
    """The addresses of each member set a port needs (a group absent from the map: none)."""
    groups = remote_groups or {}
    return {key: tuple(groups.get(key[0]) or ()) for key in keys}
