"""The host data plane: an L2 driver, DHCP, a firewall and routers, each loaded by name
from the entry points of group ``stackling.network.drivers`` (``"<kind>.<name>"``).

Example::

    drivers = load("fake")                                  # every kind's in-memory fake
    config = DriverConfig(state_dir=Path("/var/lib/stackling/network-agent"), local_ip="10.0.0.5")
    drivers = load({"l2": "linux", "dhcp": "linux", "firewall": "linux", "router": "linux"}, config)
    bridge = drivers.l2.ensure_network(spec)

Built in, for each kind: ``linux`` (Linux bridges and VXLAN, dnsmasq, iptables and ipset,
router namespaces) and ``fake`` (in memory, for tests). Another package adds one by
declaring the same kind of entry point, naming a class with ``from_config(config)``;
a name nobody installed raises ``PluginError`` (a start-up error) listing those that are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common_rpc.chassis.plugins import load_driver
from network_svc.drivers.base import (
    DhcpDriver,
    Driver,
    DriverConfig,
    Firewall,
    L2Driver,
    RouterDriver,
)

SERVICE = "network"
KINDS = ("l2", "dhcp", "firewall", "router")


@dataclass(frozen=True)
class Drivers:
    l2: L2Driver
    dhcp: DhcpDriver
    firewall: Firewall
    router: RouterDriver


def load(choice: str | Mapping[str, str], config: DriverConfig | None = None) -> Drivers:
    """The drivers ``choice`` names: one name for every kind, or one per kind."""
    config = config or DriverConfig()
    names = {kind: choice for kind in KINDS} if isinstance(choice, str) else dict(choice)
    missing = [kind for kind in KINDS if not names.get(kind)]
    if missing:
        raise ValueError(f"no {', '.join(missing)} driver named (network has {', '.join(KINDS)})")
    made = {}
    for kind in KINDS:
        driver: Driver = load_driver(SERVICE, kind, names[kind])
        made[kind] = driver.from_config(config)
    return Drivers(**made)
