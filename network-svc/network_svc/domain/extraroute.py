"""A router's static routes (Neutron's extraroute and extraroute-atomic).

``routes`` is the whole list, replaced by an update; ``add_extraroutes`` and
``remove_extraroutes`` change it by set union and difference under the router's lock, so
two clients adding routes at once both keep theirs. Each nexthop must be on a subnet one
of the router's own legs (interfaces, gateway) is on, and not one of the router's own
addresses; an interface a route's nexthop needs cannot be removed (409).

    routes = parse(body["routes"])                   # 400 on a malformed list
    await check(session, router, routes)             # 400 InvalidRoutes
    router.routes = routes
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import IpAllocation, Router, RouterPort, Subnet
from .errors import conflict, invalid
from .subnet_attrs import hostroutes

# Neutron's max_routes default.
MAX_ROUTES = 30


def parse(value: Any) -> list[dict[str, str]]:
    """``type:hostroutes`` on the ``routes`` attribute; None is no routes."""
    return hostroutes("routes", value)


def action_routes(body: Any) -> list[dict[str, str]]:
    """The routes of an add/remove_extraroutes body: ``{"router": {"routes": [...]}}``."""
    inner = body.get("router") if isinstance(body, dict) else None
    if not isinstance(inner, dict) or "routes" not in inner:
        raise invalid("Bad router request: expected {'router': {'routes': [...]}}.")
    return parse(inner["routes"])


def _invalid_routes(routes: list[dict[str, str]], reason: str) -> Exception:
    return invalid(f"Invalid format for routes: {routes}, {reason}", "InvalidRoutes")


async def _connected(session: AsyncSession, router: Router) -> list[tuple[str, str]]:
    """(subnet CIDR, the router's address on it) for each of the router's own legs."""
    legs = select(RouterPort.port_id).where(RouterPort.router_id == router.id)
    ports = [*await session.scalars(legs)]
    if router.gw_port_id:
        ports.append(router.gw_port_id)
    if not ports:
        return []
    rows = await session.execute(
        select(Subnet.cidr, IpAllocation.ip_address)
        .join(Subnet, Subnet.id == IpAllocation.subnet_id)
        .where(IpAllocation.port_id.in_(ports))
    )
    return [(cidr, ip) for cidr, ip in rows]


async def check(session: AsyncSession, router: Router, routes: list[dict[str, str]]) -> None:
    """Neutron's ``_validate_routes``: how many, and each nexthop connected, not ours."""
    if len(routes) > MAX_ROUTES:
        raise invalid(
            f"Unable to complete operation for {router.id}. The number of routes exceeds "
            f"the maximum {MAX_ROUTES}.",
            "RoutesExhausted",
        )
    connected = await _connected(session, router)
    nets = [ipaddress.ip_network(cidr) for cidr, _ip in connected]
    own = {ipaddress.ip_address(ip) for _cidr, ip in connected}
    for route in routes:
        nexthop = ipaddress.ip_address(route["nexthop"])
        if not any(nexthop.version == n.version and nexthop in n for n in nets):
            raise _invalid_routes(routes, "the nexthop is not connected with router")
        if nexthop in own:
            raise _invalid_routes(routes, "the nexthop is used by router")


def added(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """extraroute-atomic's add: the old routes, then the new ones not already there."""
    return [*old, *(r for r in new if r not in old)]


def removed(old: list[dict[str, str]], gone: list[dict[str, str]]) -> list[dict[str, str]]:
    """extraroute-atomic's remove: the old routes but those given (absent ones: ignored)."""
    return [r for r in old if r not in gone]


def check_interface_unused(router: Router, subnet: Subnet) -> None:
    """409 when a route's nexthop is on the subnet whose interface is being removed."""
    net = ipaddress.ip_network(subnet.cidr)
    for route in router.routes or ():
        nexthop = ipaddress.ip_address(route["nexthop"])
        if nexthop.version == net.version and nexthop in net:
            raise conflict(
                "RouterInterfaceInUseByRoute",
                f"Router interface for subnet {subnet.id} on router {router.id} cannot be "
                "deleted, as it is required by one or more routes.",
            )
