"""Level-triggered drivers: repeating ensure changes nothing, a dead dnsmasq comes back,
list_owned reports exactly what exists and delete removes it (real kernel, root)."""

from __future__ import annotations

import os
import signal
import time

from driver_fixtures import OPEN, Lab, lab_fixture  # noqa: F401

from network_svc.drivers.linux import netlink
from network_svc.drivers.linux.sweep import leftovers, our_rules


def _snapshot(lab: Lab) -> dict[str, dict]:
    return {n: v for n, v in netlink.links().items() if n.startswith(lab.prefix)}


def test_ensure_twice_changes_nothing(lab: Lab) -> None:
    net = lab.network("10.80.0.0/24")
    a = lab.guest(net, "10.80.0.10")
    hosts_file = lab.dhcp.state_dir / net.network_id / "hosts"
    links, rules = _snapshot(lab), our_rules(lab.prefix)
    pid, mtime = lab.dhcp.running()[net.network_id], hosts_file.stat().st_mtime_ns
    lab.l2.ensure_network(net)
    lab.l2.plug_port(a.port)
    lab.fw.ensure_port(a.port, OPEN)
    lab.dhcp.ensure(net, lab.hosts[net.network_id])
    assert _snapshot(lab) == links
    assert our_rules(lab.prefix) == rules
    assert lab.dhcp.running()[net.network_id] == pid
    assert hosts_file.stat().st_mtime_ns == mtime  # unchanged file: no rewrite, no SIGHUP
    assert a.dhcp() == "10.80.0.10"


def test_new_host_is_served_without_restarting_dnsmasq(lab: Lab) -> None:
    net = lab.network("10.81.0.0/24")
    a = lab.guest(net, "10.81.0.10")
    pid = lab.dhcp.running()[net.network_id]
    b = lab.guest(net, "10.81.0.11")  # hosts file rewritten, dnsmasq told with SIGHUP
    assert lab.dhcp.running()[net.network_id] == pid
    assert b.dhcp() == "10.81.0.11" and a.dhcp() == "10.81.0.10"


def test_killed_dnsmasq_is_restarted_by_ensure_and_leases_still_work(lab: Lab) -> None:
    net = lab.network("10.82.0.0/24")
    a = lab.guest(net, "10.82.0.10")
    assert a.dhcp() == "10.82.0.10"
    pid = lab.dhcp.running()[net.network_id]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while net.network_id in lab.dhcp.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert net.network_id not in lab.dhcp.running()
    assert a.dhcp() is None
    lab.dhcp.ensure(net, lab.hosts[net.network_id])
    assert lab.dhcp.running()[net.network_id] != pid
    assert a.dhcp() == "10.82.0.10"


def test_list_owned_reports_exactly_what_was_created_and_delete_removes_it(lab: Lab) -> None:
    n1, n2 = lab.network("10.83.0.0/24"), lab.network("10.84.0.0/24")
    a, b = lab.guest(n1, "10.83.0.10"), lab.guest(n2, "10.84.0.10")
    names = lab.names
    assert lab.l2.list_owned() == {names.bridge(n1.network_id), names.bridge(n2.network_id)}
    assert lab.dhcp.list_owned() == {
        names.dhcp_namespace(n1.network_id),
        names.dhcp_namespace(n2.network_id),
    }
    assert set(lab.dhcp.running()) == {n1.network_id, n2.network_id}
    chains = {names.chain(k, g.port.port_id) for g in (a, b) for k in ("a", "i", "o", "s")}
    assert lab.fw.list_owned() == chains | {names.chain("fwd")}
    lab.close()
    assert lab.l2.list_owned() == lab.dhcp.list_owned() == lab.fw.list_owned() == frozenset()
    assert lab.dhcp.running() == {}
    assert leftovers(lab.prefix, lab.state_dir) == {
        "links": [],
        "netns": [],
        "chains": [],
        "dnsmasq": [],
    }


def test_dhcp_without_dhcp_subnets_removes_the_namespace(lab: Lab) -> None:
    net = lab.network("10.85.0.0/24")
    off = type(net)(net.network_id, net.segmentation_type, None, net.mtu, ())
    lab.dhcp.ensure(off, [])
    assert lab.dhcp.list_owned() == frozenset()
    assert lab.dhcp.running() == {}
