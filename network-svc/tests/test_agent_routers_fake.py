"""HostAgent's router commands with the fake drivers (pure logic, no kernel): newest
generation wins, absence removes, and a converge drops routers the DB no longer has."""

from __future__ import annotations

from typing import Any

from network_svc.agent.host import HostAgent
from network_svc.contracts import HostState, RouterState
from network_svc.drivers import load
from network_svc.drivers.base import DriverConfig
from network_svc.drivers.fake import FakeRouter
from network_svc.drivers.names import Names

NET = {"network_id": "n1", "segmentation_type": "local", "mtu": 1400, "generation": 1}
EXT = {"network_id": "ext", "segmentation_type": "local", "mtu": 1500, "generation": 1}


def _router(
    router_id: str, generation: int, fips: list[dict[str, str]], routes: Any = ()
) -> RouterState:
    data: dict[str, Any] = {
        "routes": list(routes),
        "router_id": router_id,
        "generation": generation,
        "admin_state_up": True,
        "enable_snat": True,
        "gateway": {
            "port_id": "pg",
            "network_id": "ext",
            "mac": "fa:16:3e:00:00:09",
            "cidrs": ["203.0.113.5/24"],
            "next_hop": "203.0.113.1",
        },
        "interfaces": [
            {
                "port_id": "p1",
                "network_id": "n1",
                "subnet_id": "s1",
                "mac": "fa:16:3e:00:00:01",
                "cidrs": ["10.0.0.1/24"],
            }
        ],
        "floating_ips": fips,
        "networks": [NET, EXT],
    }
    return RouterState.model_validate(data)


async def test_sync_router_generations_and_absence() -> None:
    host = HostAgent(load("fake", DriverConfig(Names("t1"))), Names("t1"))
    assert isinstance(host.router, FakeRouter)
    fip = [{"floating_ip": "203.0.113.7", "fixed_ip": "10.0.0.5"}]
    first = await host.sync_router(_router("r1", 3, fip), 3)
    assert first.applied and first.namespace == "t1qrouter-r1"
    spec = host.router.routers["r1"]
    assert spec.next_hop == "203.0.113.1" and spec.interfaces[0].mtu == 1400
    assert [(f.floating_ip, f.fixed_ip) for f in spec.floating_ips] == [("203.0.113.7", "10.0.0.5")]
    assert set(host.drivers.l2.networks) == {"n1", "ext"}  # its bridges come first
    late = await host.sync_router(_router("r1", 2, []), 2)
    assert not late.applied and late.observed_generation == 3
    assert host.router.routers["r1"].floating_ips  # the older command changed nothing
    gone = await host.sync_router(RouterState(router_id="r1", absent=True), 4)
    assert gone.applied and "r1" not in host.router.routers
    again = await host.sync_router(_router("r1", 3, fip), 3)
    assert not again.applied and "r1" not in host.router.routers


async def test_converge_removes_routers_the_db_no_longer_has() -> None:
    host = HostAgent(load("fake", DriverConfig(Names("t2"))), Names("t2"))
    await host.sync_router(_router("stale", 1, []), 1)
    state = HostState.model_validate(
        {"host": "h", "networks": [NET, EXT], "ports": [], "routers": [_router("kept", 5, [])]}
    )
    result = await host.converge(state, 0.0)
    assert result["routers"] == 1 and result["removed"] >= 1
    assert set(host.router.routers) == {"kept"}


async def test_router_routes_reach_the_driver() -> None:
    """Static routes go with the router's state; one whose nexthop no leg reaches is not
    made, two nexthops for a destination make one (multipath) route."""
    host = HostAgent(load("fake", DriverConfig(Names("t3"))), Names("t3"))
    assert isinstance(host.router, FakeRouter)
    routes = [
        {"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"},
        {"destination": "10.9.0.0/16", "nexthop": "203.0.113.9"},
        {"destination": "10.8.0.0/16", "nexthop": "192.0.2.1"},
    ]
    await host.sync_router(_router("r1", 1, [], routes), 1)
    assert host.router.routers["r1"].routes == (
        ("10.9.0.0/16", "10.0.0.254"),
        ("10.9.0.0/16", "203.0.113.9"),
        ("10.8.0.0/16", "192.0.2.1"),
    )
    assert host.router.tables["r1"] == {"10.9.0.0/16": ("10.0.0.254", "203.0.113.9")}
    await host.sync_router(_router("r1", 2, [], routes[:1]), 2)
    assert host.router.tables["r1"] == {"10.9.0.0/16": ("10.0.0.254",)}
    await host.sync_router(RouterState(router_id="r1", absent=True), 3)
    assert "r1" not in host.router.tables
