"""The JSON shape of a router's desired state on ``network.<host>``, and back to a spec.

Built by ``network_svc.agent.desired.router_state``::

    {"router_id": "r1", "generation": 4, "admin_state_up": True, "enable_snat": True,
     "gateway": {"port_id": "p0", "network_id": "ext", "mac": "fa:16:3e:..",
                 "cidrs": ["203.0.113.5/24"], "next_hop": "203.0.113.1"},
     "interfaces": [{"port_id": "p1", "network_id": "n1", "subnet_id": "s1",
                     "mac": "fa:16:3e:..", "cidrs": ["10.0.0.1/24"]}],
     "floating_ips": [{"floating_ip": "203.0.113.7", "fixed_ip": "10.0.0.5"}],
     "networks": [<network_state of n1>, <network_state of ext>]}

``{"router_id": "r1", "absent": True}`` asks for the router's removal.
"""

from __future__ import annotations

from typing import Any

from network_svc.drivers.base import FloatingIpSpec, RouterLeg, RouterSpec


def wanted(data: dict[str, Any]) -> bool:
    """False when the router must not exist on the host (deleted or administratively down)."""
    return not data.get("absent") and bool(data.get("admin_state_up", True))


def _leg(data: dict[str, Any], mtus: dict[str, int]) -> RouterLeg:
    return RouterLeg(
        port_id=data["port_id"],
        network_id=data["network_id"],
        mac=data["mac"],
        cidrs=tuple(data.get("cidrs") or ()),
        mtu=mtus.get(data["network_id"], 1500),
    )


def router_spec(data: dict[str, Any]) -> RouterSpec:
    mtus = {n["network_id"]: int(n.get("mtu", 1500)) for n in data.get("networks") or ()}
    gateway = data.get("gateway")
    return RouterSpec(
        router_id=data["router_id"],
        interfaces=tuple(_leg(leg, mtus) for leg in data.get("interfaces") or ()),
        gateway=_leg(gateway, mtus) if gateway else None,
        next_hop=(gateway or {}).get("next_hop"),
        enable_snat=bool(data.get("enable_snat", True)),
        floating_ips=tuple(
            FloatingIpSpec(f["floating_ip"], f["fixed_ip"]) for f in data.get("floating_ips") or ()
        ),
    )
