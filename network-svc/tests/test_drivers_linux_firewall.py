"""Anti-spoofing and security groups on bridged traffic, on the real kernel (root)."""

from __future__ import annotations

import subprocess
import time

import pytest
from driver_fixtures import EGRESS_ONLY, OPEN, Guest, Lab, lab_fixture  # noqa: F401

from network_svc.drivers.base import DriverError, PortSpec, SecurityGroupRule
from network_svc.drivers.linux import priv
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


def _connects(guest: Guest, ip: str, port: int) -> bool:
    """A TCP connect from ``guest`` (a dropped SYN times out after 2 s)."""
    out = priv.run(
        priv.in_netns(guest.ns, ["busybox", "nc", "-w", "2", ip, str(port)]),
        timeout=10, check=False, input="",
    )  # fmt: skip
    return "tcp-ok" in out


def _wait_listening(guest: Guest, ports: tuple[int, ...], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = priv.run(priv.in_netns(guest.ns, ["ss", "-Hltn"]), timeout=10, check=False)
        bound = {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line}
        if bound >= set(ports):
            return
        assert time.monotonic() < deadline, f"{guest.ns}: not listening on {ports}: {out}"
        time.sleep(0.1)


def test_ingress_tcp_port_opened_and_closed_by_rules(lab: Lab) -> None:
    net = lab.network("10.73.0.0/24")
    a = lab.guest(net, "10.73.0.10")
    only_8080 = (*EGRESS_ONLY, SecurityGroupRule("ingress", "tcp", 8080, 8080))
    b = lab.guest(net, "10.73.0.11", rules=only_8080)
    assert a.dhcp() == "10.73.0.10" and b.dhcp() == "10.73.0.11"
    serve = ["busybox", "nc", "-ll", "-p", "{port}", "-e", "/bin/echo", "tcp-ok"]
    listeners = [
        subprocess.Popen(
            priv.in_netns(b.ns, [arg.format(port=port) for arg in serve]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in (8080, 8081)
    ]
    try:
        _wait_listening(b, (8080, 8081))  # a SYN before the bind would be refused, not dropped
        assert _connects(a, "10.73.0.11", 8080)
        assert not _connects(a, "10.73.0.11", 8081)  # listening, but no rule lets it in
        lab.fw.ensure_port(b.port, (*only_8080, SecurityGroupRule("ingress", "tcp", 8081, 8081)))
        assert _connects(a, "10.73.0.11", 8081)
        lab.fw.ensure_port(b.port, EGRESS_ONLY)
        assert not _connects(a, "10.73.0.11", 8080) and not _connects(a, "10.73.0.11", 8081)
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait(5)


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


def test_remote_group_rule_matches_a_member_set_of_any_size(lab: Lab) -> None:
    """Ingress from the own group: members reach each other, others only once they join;
    the chain keeps one rule per security-group rule whatever the number of members."""
    group = "5b1e0c8a-2f4d-4c1e-9a7b-3d2c1b0a9f8e"
    key = (group, "IPv4")
    own = (*EGRESS_ONLY, SecurityGroupRule("ingress", remote_group_id=group))
    net = lab.network("10.73.0.0/24")
    members = ["10.73.0.10", "10.73.0.11"]
    lab.fw.ensure_sets({key: members})
    a, b = lab.guest(net, "10.73.0.10", own), lab.guest(net, "10.73.0.11", own)
    c = lab.guest(net, "10.73.0.12", EGRESS_ONLY)
    try:
        assert a.dhcp() and b.dhcp() and c.dhcp()
        assert a.ping("10.73.0.11") and b.ping("10.73.0.10")
        assert not c.ping("10.73.0.10") and not c.ping("10.73.0.11")
        ingress = lab.names.chain("i", a.port.port_id)
        before = priv.run(["iptables", "-w", "10", "-S", ingress], timeout=15).splitlines()
        assert sum("--match-set" in line for line in before) == 1

        # c joins: its address enters the set; a's and b's chains do not change
        lab.fw.ensure_sets({key: [*members, "10.73.0.12"]})
        lab.fw.ensure_port(c.port, own)
        assert c.ping("10.73.0.10") and a.ping("10.73.0.12")
        assert priv.run(["iptables", "-w", "10", "-S", ingress], timeout=15).splitlines() == before
        name = lab.names.ipset(group, "IPv4")
        assert lab.fw.sets.members(name) == [*members, "10.73.0.12"]
        assert lab.fw.list_sets() == {name}

        # a set in use is kept; once no rule names it, it goes
        assert lab.fw.remove_sets(()) == 0 and lab.fw.list_sets() == {name}
        for guest in (a, b, c):
            lab.fw.ensure_port(guest.port, OPEN)
        assert lab.fw.remove_sets(()) == 1 and lab.fw.list_sets() == frozenset()
    finally:
        lab.close()
        lab.fw.remove_sets(())


def test_remote_group_rule_names_its_set() -> None:
    rule = SecurityGroupRule("ingress", "tcp", 22, 22, remote_group_id="g1")
    assert rule_args(rule, "zqsg4-abc") == [
        "-m", "set", "--match-set", "zqsg4-abc", "src", "-p", "tcp", "-m", "tcp", "--dport", "22:22"
    ]  # fmt: skip
    with pytest.raises(DriverError):
        rule_args(rule)
    with pytest.raises(DriverError):
        rule_args(rule, "x -j ACCEPT")


def test_member_set_names_fit_the_kernel_with_room_to_swap() -> None:
    group = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
    for prefix in ("", "zq", "abcde"):
        names = Names(prefix)
        v4, v6 = names.ipset(group, "IPv4"), names.ipset(group, "IPv6")
        assert v4 != v6 and v4.startswith(names.ipset_prefix())
        assert len(v4 + "-n") <= 31 and len(v6 + "-n") <= 31
