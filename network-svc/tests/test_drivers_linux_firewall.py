"""Anti-spoofing and security groups on bridged traffic, on the real kernel (root)."""

from __future__ import annotations

import pytest
from driver_fixtures import EGRESS_ONLY, OPEN, Lab, lab_fixture  # noqa: F401

from network_svc.drivers.base import DriverError, PortSpec, SecurityGroupRule
from network_svc.drivers.linux.iptables import IptablesFirewall, rule_args
from network_svc.drivers.linux.sweep import our_rules
from network_svc.drivers.names import Names


def test_changed_ip_cannot_reach_neighbour_while_unchanged_guest_still_can(lab: Lab) -> None:
    net = lab.network("10.74.0.0/24")
    a, b = lab.guest(net, "10.74.0.10"), lab.guest(net, "10.74.0.11")
    assert a.dhcp() == "10.74.0.10" and b.dhcp() == "10.74.0.11"
    assert a.ping("10.74.0.11")
    a.set_ip("10.74.0.99/24")
    assert not a.ping("10.74.0.11")
    assert not a.ping("10.74.0.2")
    assert b.ping("10.74.0.2")  # the unchanged guest still reaches the DHCP address
    assert b.ping("10.74.0.2") and not b.ping("10.74.0.99")


def test_without_port_security_a_changed_ip_still_reaches_neighbour(lab: Lab) -> None:
    net = lab.network("10.74.0.0/24")
    a = lab.guest(net, "10.74.0.10", port_security=False)
    b = lab.guest(net, "10.74.0.11", port_security=False)
    assert a.dhcp() == "10.74.0.10" and b.dhcp() == "10.74.0.11"
    a.set_ip("10.74.0.99/24")
    assert a.ping("10.74.0.11")  # control: the block above is the firewall's doing


def test_changed_mac_cannot_reach_neighbour(lab: Lab) -> None:
    net = lab.network("10.75.0.0/24")
    a, b = lab.guest(net, "10.75.0.10"), lab.guest(net, "10.75.0.11")
    assert a.dhcp() == "10.75.0.10" and b.dhcp() == "10.75.0.11"
    assert a.ping("10.75.0.11")
    a.set_mac("fa:16:3e:dd:dd:dd")
    assert not a.ping("10.75.0.11")
    assert b.ping("10.75.0.2")


def test_ingress_icmp_closed_then_opened(lab: Lab) -> None:
    net = lab.network("10.76.0.0/24")
    a = lab.guest(net, "10.76.0.10")
    b = lab.guest(net, "10.76.0.11", rules=EGRESS_ONLY)
    assert a.dhcp() == "10.76.0.10" and b.dhcp() == "10.76.0.11"
    assert not a.ping("10.76.0.11")
    assert b.ping("10.76.0.10")  # b's egress is open and the reply is ESTABLISHED at b
    lab.fw.ensure_port(b.port, OPEN)
    assert a.ping("10.76.0.11")
    lab.fw.ensure_port(b.port, EGRESS_ONLY)
    assert not a.ping("10.76.0.11")


def test_remote_prefix_rule_allows_only_that_source(lab: Lab) -> None:
    net = lab.network("10.77.0.0/24")
    a, c = lab.guest(net, "10.77.0.10"), lab.guest(net, "10.77.0.12")
    only_a = (*EGRESS_ONLY, SecurityGroupRule("ingress", "icmp", remote_ip_prefix="10.77.0.10/32"))
    b = lab.guest(net, "10.77.0.11", rules=only_a)
    assert a.dhcp() and b.dhcp() and c.dhcp()
    assert a.ping("10.77.0.11")
    assert not c.ping("10.77.0.11")


@pytest.mark.parametrize("secured", [True, False])
def test_arp_reply_for_an_ip_the_port_does_not_own_is_dropped(lab: Lab, secured: bool) -> None:
    net = lab.network("10.79.0.0/24")
    a = lab.guest(net, "10.79.0.10", port_security=secured)
    b = lab.guest(net, "10.79.0.11", port_security=secured)
    assert a.dhcp() == "10.79.0.10" and b.dhcp() == "10.79.0.11"
    a.set_ip("10.79.0.99/24")
    b.ping("10.79.0.99")  # makes b ask who-has .99; a answers with a spoofed sender IP
    learned = a.port.mac in b.sh("ip", "neigh", "show", "10.79.0.99")
    assert learned is not secured  # unsecured: the control that b would learn it


@pytest.mark.parametrize("secured", [True, False])
def test_ipv6_from_a_secured_port_is_dropped(lab: Lab, secured: bool) -> None:
    net = lab.network("10.78.0.0/24")
    a = lab.guest(net, "10.78.0.10", port_security=secured)
    b = lab.guest(net, "10.78.0.11", port_security=secured)
    a.add_ipv6("fd00:78::a/64")
    b.add_ipv6("fd00:78::b/64")
    assert a.ping6("fd00:78::b") is not secured  # unsecured: the control that IPv6 works


def test_rule_args_are_argv_fragments() -> None:
    tcp = SecurityGroupRule("ingress", "tcp", 22, 22, "10.0.0.0/8")
    assert rule_args(tcp) == ["-s", "10.0.0.0/8", "-p", "tcp", "-m", "tcp", "--dport", "22:22"]
    assert rule_args(SecurityGroupRule("egress")) == []
    assert rule_args(SecurityGroupRule("ingress", "icmp", 8)) == ["-p", "icmp", "--icmp-type", "8"]
    with pytest.raises(DriverError):
        rule_args(SecurityGroupRule("ingress", "tcp -j ACCEPT"))
    with pytest.raises(ValueError):
        rule_args(SecurityGroupRule("ingress", None, remote_ip_prefix="0/0 -j ACCEPT"))


def test_bad_mac_is_refused_before_anything_runs() -> None:
    port = PortSpec("p", "n", "fa:16:3e:00:00:01 -j ACCEPT", ("10.0.0.5",))
    with pytest.raises(DriverError):
        IptablesFirewall(Names("zq")).ensure_port(port, [])


def test_ensure_port_twice_changes_nothing_and_remove_cleans_up(lab: Lab) -> None:
    port = PortSpec("8d0c7e2a-1111-4a4a-9b9b-000000000001", "n", "fa:16:3e:00:00:01", ("10.0.0.5",))
    port = PortSpec(**{**port.__dict__, "device": lab.names.port_device(port.port_id)})
    lab.fw.ensure_port(port, OPEN)
    before = our_rules(lab.prefix)
    lab.fw.ensure_port(port, OPEN)
    assert our_rules(lab.prefix) == before
    kinds = ("a", "i", "o", "s")
    owned = {lab.names.chain(k, port.port_id) for k in kinds} | {lab.names.chain("fwd")}
    assert lab.fw.list_owned() == owned
    lab.fw.remove_port(port.port_id)
    lab.fw.remove_port(port.port_id)
    assert lab.fw.list_owned() == frozenset()
    assert our_rules(lab.prefix) == []
