"""Availability zones (Neutron's availability_zone, network_ and router_availability_zone).

A zone is made by the network nodes in it (``NETWORK_NETWORK_NODE_ZONES``): each serves
networks (their DHCP server) and routers. Without network nodes DHCP runs on every host
and routers on ``l3_host`` (or this service's host), each in the zone of that host,
``default_availability_zone`` unless named. A network's or router's
``availability_zone_hints`` name zones the scheduler picks its node in.

    hints = zone_hints(settings, "router", body)   # 404 AvailabilityZoneNotFound
    host = await scheduling.network_node(session, settings, "router", hints)
"""

from __future__ import annotations

import json
from typing import Any, Literal

from common_rpc.errors import NotFound

from ..settings import NetworkSettings
from .errors import bad_attribute, invalid_input

Resource = Literal["network", "router"]
# Neutron's column for the hints' JSON text (AZ_HINTS_DB_LEN).
HINTS_LEN = 255


def zones(settings: NetworkSettings) -> dict[Resource, list[str]]:
    """The zones each kind of resource can be placed in, sorted."""
    nodes = list(dict.fromkeys(settings.network_nodes))
    network = sorted({settings.zone_of(n) for n in nodes}) or [settings.default_availability_zone]
    if settings.l3_host or not nodes:
        router = [settings.zone_of(settings.router_host())]
    else:
        router = network
    return {"network": network, "router": router}


def listing(settings: NetworkSettings) -> list[dict[str, str]]:
    """``GET /v2.0/availability_zones``: one item per zone and resource."""
    return [
        {"name": name, "resource": resource, "state": "available"}
        for resource, names in zones(settings).items()
        for name in names
    ]


def zone_hints(settings: NetworkSettings, resource: Resource, body: dict[str, Any]) -> list[str]:
    """The hints of a create body, checked as Neutron does: a list of unique strings
    (400), short enough to store (400), each an existing zone of the resource (404)."""
    value = body.get("availability_zone_hints")
    if value is None:
        return []
    attribute = "availability_zone_hints"
    if not isinstance(value, list):
        raise bad_attribute(attribute, f"'{value}' is not a list")
    duplicates = sorted({str(v) for v in value if value.count(v) > 1})
    if duplicates:
        raise bad_attribute(attribute, f"Duplicate items in the list: '{', '.join(duplicates)}'")
    for item in value:
        if not isinstance(item, str):
            raise bad_attribute(attribute, f"'{item}' is not a valid string")
    if len(json.dumps(value)) > HINTS_LEN:
        raise invalid_input("Too many availability_zone_hints specified")
    known = set(zones(settings)[resource])
    for name in value:
        if name not in known:
            raise NotFound(
                f"AvailabilityZone {name} could not be found.",
                details={"type": "AvailabilityZoneNotFound"},
            )
    return list(value)


def placed(settings: NetworkSettings, hosts: list[str]) -> list[str]:
    """The zones of the hosts that serve a resource (its ``availability_zones``)."""
    return sorted({settings.zone_of(h) if h else settings.default_availability_zone for h in hosts})
