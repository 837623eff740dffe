"""Names, driver loading by name, and the in-memory fakes (no root, no host changes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common_rpc.chassis.plugins import PluginError, load_driver
from network_svc.agent.settings import AgentSettings
from network_svc.drivers import load
from network_svc.drivers.base import (
    DhcpHost,
    DriverConfig,
    DriverError,
    NetworkSpec,
    PortSpec,
    SecurityGroupRule,
    SubnetSpec,
)
from network_svc.drivers.fake import FakeDhcp, FakeFirewall, FakeL2, FakeRouter
from network_svc.drivers.linux import priv
from network_svc.drivers.linux.bridge import LinuxBridgeL2
from network_svc.drivers.linux.dnsmasq import DnsmasqDhcp, server_ip
from network_svc.drivers.linux.iptables import IptablesFirewall
from network_svc.drivers.linux.router import LinuxRouter
from network_svc.drivers.names import Names

NET = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
PORT = "8d0c7e2a-1111-4a4a-9b9b-000000000001"


def test_names_follow_the_neutron_shapes_and_fit_ifnamsiz() -> None:
    n = Names()
    assert n.bridge(NET) == "brq6f1c2d3e4a5"
    assert n.vxlan(16777215) == "vxlan-16777215"
    assert n.dhcp_namespace(NET) == f"qdhcp-{NET}"
    assert (n.dhcp_host_dev(NET), n.dhcp_ns_dev(NET)) == ("tap6f1c2d3e4a5", "ns-6f1c2d3e4a5")
    assert n.port_device(PORT) == "tap8d0c7e2a111"
    p = Names("zk1")
    for name in (p.bridge(NET), p.dhcp_host_dev(NET), p.dhcp_ns_dev(NET), p.port_device(PORT)):
        assert name.startswith("zk1") and len(name) <= 15
    assert len(p.chain("i", PORT)) <= 28


def test_names_reject_unsafe_prefixes_and_long_vxlan_names() -> None:
    with pytest.raises(ValueError):
        Names("a b")
    with pytest.raises(ValueError):
        Names("zzzz").vxlan(16777215)


def test_dhcp_server_address_is_the_first_free_from_dot_two() -> None:
    assert server_ip(SubnetSpec("s", "10.0.0.0/24", "10.0.0.1")) == "10.0.0.2"
    assert server_ip(SubnetSpec("s", "10.0.0.0/24", "10.0.0.2")) == "10.0.0.3"
    assert server_ip(SubnetSpec("s", "10.0.0.0/24", dhcp_server_ip="10.0.0.9")) == "10.0.0.9"


def test_load_chooses_drivers_by_name(tmp_path: Path) -> None:
    fake = load("fake")
    assert isinstance(fake.l2, FakeL2) and isinstance(fake.dhcp, FakeDhcp)
    assert isinstance(fake.firewall, FakeFirewall) and isinstance(fake.router, FakeRouter)
    linux = load("linux", DriverConfig(state_dir=tmp_path, local_ip="127.0.0.1"))
    assert isinstance(linux.l2, LinuxBridgeL2) and linux.l2.local_ip == "127.0.0.1"
    assert isinstance(linux.dhcp, DnsmasqDhcp) and linux.dhcp.state_dir == tmp_path
    assert isinstance(linux.firewall, IptablesFirewall) and isinstance(linux.router, LinuxRouter)
    # One kind by another name: the rest as named.
    mixed = load({"l2": "fake", "dhcp": "fake", "firewall": "linux", "router": "fake"})
    assert isinstance(mixed.firewall, IptablesFirewall) and isinstance(mixed.l2, FakeL2)
    with pytest.raises(PluginError, match="installed: fake, linux"):
        load("ovs")
    with pytest.raises(ValueError, match="router"):
        load({"l2": "fake", "dhcp": "fake", "firewall": "fake"})


def test_the_built_in_drivers_are_entry_points() -> None:
    """Registered in pyproject.toml exactly as a third party's would be."""
    assert load_driver("network", "l2", "linux") is LinuxBridgeL2
    assert load_driver("network", "dhcp", "linux") is DnsmasqDhcp
    assert load_driver("network", "firewall", "fake") is FakeFirewall
    assert load_driver("network", "router", "linux") is LinuxRouter


def test_settings_name_a_driver_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """NETWORK_DRIVERS per kind; NETWORK_AGENT_DRIVER for every kind it leaves out."""
    monkeypatch.setenv("NETWORK_AGENT_DRIVER", "fake")
    monkeypatch.setenv("NETWORK_DRIVERS", '{"firewall": "linux"}')
    settings = AgentSettings()
    assert [settings.driver(k) for k in ("l2", "dhcp", "firewall", "router")] == [
        "fake",
        "fake",
        "linux",
        "fake",
    ]
    monkeypatch.setenv("NETWORK_DRIVERS", '{"l3": "linux"}')
    with pytest.raises(ValueError, match="unknown kind"):
        AgentSettings()


def test_fakes_record_desired_state() -> None:
    d = load("fake", DriverConfig(names=Names("t")))
    net = NetworkSpec(NET, "vxlan", 1001, 1450, (SubnetSpec("s", "10.0.0.0/24", "10.0.0.1"),))
    port = PortSpec(PORT, NET, "fa:16:3e:00:00:01", ("10.0.0.5",))
    with pytest.raises(DriverError):
        d.l2.plug_port(port)  # like the real driver: no bridge yet
    assert d.l2.ensure_network(net) == "tbrq6f1c2d3e4a5"
    d.l2.plug_port(port)
    d.dhcp.ensure(net, [DhcpHost(port.mac, "10.0.0.5", "host-10-0-0-5")])
    d.firewall.ensure_port(port, [SecurityGroupRule("ingress", "icmp")])
    assert d.l2.list_owned() == {"tbrq6f1c2d3e4a5"}
    assert d.dhcp.list_owned() == {f"tqdhcp-{NET}"}
    assert len(d.firewall.list_owned()) == 4
    d.firewall.remove_port(PORT)
    d.l2.unplug_port(PORT)
    d.dhcp.delete(NET)
    d.l2.delete_network(NET)
    assert not (d.l2.list_owned() | d.dhcp.list_owned() | d.firewall.list_owned())
    assert isinstance(d.firewall, FakeFirewall)


def test_a_failed_host_command_is_a_driver_error() -> None:
    """The chassis' runner, with this service's error: callers catch ``DriverError``."""
    with pytest.raises(DriverError) as failed:
        priv.run(["ls", "/no/such/path"], timeout=10)
    assert isinstance(failed.value, priv.CommandError) and failed.value.code == 2
    assert "/no/such/path" in failed.value.stderr and "ls /no/such/path" in str(failed.value)
    assert priv.run(["ls", "/no/such/path"], timeout=10, check=False) == ""
