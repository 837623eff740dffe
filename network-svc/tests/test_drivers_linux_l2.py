"""Bridges, VXLAN, DHCP and connectivity on the real kernel (root; guests are netns)."""

from __future__ import annotations

import random
import time
import uuid

import pytest
from driver_fixtures import Lab, lab_fixture  # noqa: F401

from network_svc.drivers.base import DriverError, NetworkSpec
from network_svc.drivers.linux import netlink
from network_svc.drivers.linux.bridge import LinuxBridgeL2


def test_two_guests_get_their_configured_ip_and_ping_each_other(lab: Lab) -> None:
    net = lab.network("10.70.0.0/24")
    a = lab.guest(net, "10.70.0.10")
    b = lab.guest(net, "10.70.0.11")
    started = time.monotonic()
    assert a.dhcp() == "10.70.0.10"
    assert b.dhcp() == "10.70.0.11"
    print(f"two DHCP leases in {time.monotonic() - started:.2f}s")
    assert a.last_lease == ["10.70.0.10", "24", "10.70.0.1", "192.0.2.53", "1450"]
    assert a.ping("10.70.0.11")
    assert b.ping("10.70.0.10")
    assert a.ping("10.70.0.2")  # the DHCP port took the subnet's .2


def test_unknown_mac_gets_no_lease(lab: Lab) -> None:
    net = lab.network("10.71.0.0/24")
    a = lab.guest(net, "10.71.0.10", port_security=False)  # dnsmasq itself must refuse
    a.set_mac("fa:16:3e:ee:ee:ee")
    assert a.dhcp() is None


def test_same_cidr_on_two_networks_is_isolated(lab: Lab) -> None:
    red, blue = lab.network("10.72.0.0/24"), lab.network("10.72.0.0/24")
    # no port security: the bridges alone must keep the networks apart
    a = lab.guest(red, "10.72.0.10", port_security=False)
    b = lab.guest(blue, "10.72.0.11", port_security=False)
    assert a.dhcp() == "10.72.0.10"
    assert b.dhcp() == "10.72.0.11"
    assert a.ping("10.72.0.2") and b.ping("10.72.0.2")  # each reaches its own DHCP port
    assert not a.ping("10.72.0.11")
    assert not b.ping("10.72.0.10")


def test_vxlan_network_builds_bridge_and_vxlan_with_mtu(lab: Lab) -> None:
    vni = random.randint(10000, 99999)
    net = lab.network("10.73.0.0/24", kind="vxlan", vni=vni)
    links = netlink.links()
    bridge, vxlan = links[lab.names.bridge(net.network_id)], links[lab.names.vxlan(vni)]
    assert bridge["kind"] == "bridge" and bridge["up"] and bridge["mtu"] == 1450
    assert vxlan["kind"] == "vxlan" and vxlan["master"] == bridge["index"]
    assert vxlan["mtu"] == 1450 and vxlan["up"]
    ipv6 = f"/proc/sys/net/ipv6/conf/{lab.names.bridge(net.network_id)}/disable_ipv6"
    assert open(ipv6).read().strip() == "1"
    lab.l2.delete_network(net.network_id)
    assert lab.names.vxlan(vni) not in netlink.links()


def test_vlan_network_or_a_clear_error_where_8021q_is_missing(lab: Lab) -> None:
    phys = f"{lab.prefix}phys"
    netlink.ensure_veth(phys, f"{lab.prefix}physb")  # no dummy module here: a veth end will do
    l2 = LinuxBridgeL2(lab.names, physical_interface=phys)
    net = NetworkSpec(str(uuid.uuid4()), "vlan", 101, 1500)
    lab.networks[net.network_id] = net  # the lab tears it down either way
    try:
        bridge = l2.ensure_network(net)
    except DriverError as exc:
        assert "create vlan" in str(exc)
        pytest.skip(f"no 8021q on this kernel: {exc}")
    vlan = [v for v in netlink.links().values() if v["kind"] == "vlan"]
    assert any(v["master"] == netlink.index(bridge) for v in vlan)
    l2.delete_network(net.network_id)
    assert phys in netlink.links() and bridge not in netlink.links()
