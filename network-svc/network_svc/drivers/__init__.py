"""Data-plane drivers, chosen by name from settings.

Example::

    drivers = load("fake")                     # in-memory, for API tests
    drivers = load("linux", state_dir=Path("/var/lib/stackling/network"), local_ip="10.0.0.5")
    bridge = drivers.l2.ensure_network(spec)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from network_svc.drivers.base import DhcpDriver, Firewall, L2Driver
from network_svc.drivers.names import Names


@dataclass(frozen=True)
class Drivers:
    l2: L2Driver
    dhcp: DhcpDriver
    firewall: Firewall


def load(
    name: str,
    *,
    names: Names | None = None,
    state_dir: Path | None = None,
    local_ip: str | None = None,
    physical_interface: str | None = None,
) -> Drivers:
    names = names or Names()
    if name == "fake":
        from network_svc.drivers.fake import FakeDhcp, FakeFirewall, FakeL2

        return Drivers(FakeL2(names), FakeDhcp(names), FakeFirewall(names))
    if name == "linux":
        # imported lazily: pyroute2 is only needed where the real data plane runs
        from network_svc.drivers.linux.bridge import LinuxBridgeL2
        from network_svc.drivers.linux.dnsmasq import DnsmasqDhcp
        from network_svc.drivers.linux.iptables import IptablesFirewall

        if state_dir is None:
            raise ValueError("the linux drivers need a state_dir")
        l2 = LinuxBridgeL2(names, local_ip=local_ip, physical_interface=physical_interface)
        return Drivers(l2, DnsmasqDhcp(names, state_dir=state_dir), IptablesFirewall(names))
    raise ValueError(f"unknown network driver {name!r} (known: fake, linux)")
