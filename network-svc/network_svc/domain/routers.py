"""Routers: an external gateway port, interface ports holding subnet gateways, checks.

An interface is a ``network:router_interface`` port with the subnet's ``gateway_ip``
and a ``router_ports`` row (one per router and subnet); the gateway is a
``network:router_gateway`` port on an external network. Each change bumps the router's
generation and is recorded in ``changes.routers(session)`` so the caller can send the
router's desired state to its agent once the transaction committed.

    router = await create(session, ctx, settings, {"name": "r1"})
    info = await add_interface(session, ctx, router.id, {"subnet_id": sid})
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import RouterPayload
from common_rpc.errors import Conflict, NotFound
from common_rpc.outbox import add_event

from ..db.models import (
    FloatingIp,
    IpAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Router,
    RouterPort,
    Subnet,
)
from ..settings import NetworkSettings
from . import (
    changes,
    events,
    extraroute,
    ipam,
    networks,
    policy,
    port_rows,
    quotas,
    scheduling,
    subnet_attrs,
    subnets,
    zones,
)
from .common import (
    flag,
    new_id,
    owner_of,
    standard_view,
    text,
    touch,
    try_insert,
    uuid_attr,
)
from .errors import (
    bad_attribute,
    bad_request,
    conflict,
    invalid,
    invalid_input,
    not_found,
    read_only,
)
from .port_rows import GATEWAY, INTERFACE, MAC_ATTEMPTS, UUID, random_mac
from .zones import zone_hints

ROUTER = "network.router.{action}.end"


def gateway_info(router: Router) -> dict[str, Any] | None:
    if router.gw_network_id is None:
        return None
    fixed = router.gw_port.fixed_ips if router.gw_port is not None else []
    return {
        "network_id": router.gw_network_id,
        "enable_snat": router.enable_snat,
        "external_fixed_ips": [
            {"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in fixed
        ],
    }


def view(
    router: Router, _ctx: RequestContext | None = None, settings: NetworkSettings | None = None
) -> dict[str, Any]:
    """The router as Neutron shows it; ``settings`` (the zones of hosts) for its
    availability_zones: its host's."""
    placed = zones.placed(settings, [router.host]) if settings and router.host else []
    return standard_view(router) | {
        "status": router.status,
        "admin_state_up": router.admin_state_up,
        "external_gateway_info": gateway_info(router),
        "routes": [dict(r) for r in router.routes or ()],
        "distributed": False,
        "ha": False,
        "availability_zones": placed,
        "availability_zone_hints": list(router.availability_zone_hints or ()),
        "flavor_id": None,
    }


def visible(ctx: RequestContext) -> Any:
    query = select(Router).order_by(Router.created_at, Router.id)
    return query if ctx.is_admin else query.where(Router.project_id == ctx.project_id)


async def get(
    session: AsyncSession, ctx: RequestContext, router_id: str, *, lock: bool = False
) -> Router:
    """The router if the caller may see it; ``lock`` serialises changes to it (PostgreSQL)."""
    query = visible(ctx).where(Router.id == router_id)
    router = (await session.scalars(query.with_for_update() if lock else query)).first()
    if router is None:
        raise not_found("Router", router_id)
    return router


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[Router]:
    return list(await session.scalars(visible(ctx)))


async def interfaces(session: AsyncSession, router_id: str) -> list[RouterPort]:
    rows = await session.scalars(
        select(RouterPort).where(RouterPort.router_id == router_id).order_by(RouterPort.subnet_id)
    )
    return list(rows)


async def new_port(
    session: AsyncSession,
    ctx: RequestContext,
    network: Network,
    *,
    project_id: str,
    device_id: str,
    device_owner: str,
) -> Port:
    """A port the service owns (gateway, interface, floating IP), with a unique MAC;
    counted (never refused) when it has a project: an interface is its router's."""
    port = Port(
        id=new_id(),
        project_id=project_id,
        network_id=network.id,
        status="ACTIVE",
        device_id=device_id,
        device_owner=device_owner,
        service_owned=True,
    )
    for _ in range(MAC_ATTEMPTS):
        port.mac_address = random_mac()
        if await try_insert(session, port):
            await quotas.record(session, project_id, "port")
            return port
    raise conflict("MacAddressGenerationFailure", "Unable to generate a unique MAC address.")


async def announce_port(
    session: AsyncSession, ctx: RequestContext, port: Port, action: str
) -> None:
    """Port events and a new network generation (its DHCP hosts change), noted for the
    caller to push (``networks_changed``)."""
    await changes.network_changed(session, port.network_id)
    if action != events.DELETE:
        await session.flush()
        await session.refresh(port, ["fixed_ips", "security_groups"])
    await events.port_event(session, ctx, port, action)


async def drop_port(session: AsyncSession, ctx: RequestContext, port: Port) -> None:
    await session.refresh(port, ["fixed_ips", "security_groups"])
    await session.execute(delete(IpAllocation).where(IpAllocation.port_id == port.id))
    await session.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
    await session.execute(delete(RouterPort).where(RouterPort.port_id == port.id))
    await session.delete(port)
    await quotas.release(session, port.project_id, "port")
    await session.flush()
    await announce_port(session, ctx, port, events.DELETE)


async def _allocate_on(session: AsyncSession, network: Network, port: Port, requested: Any) -> None:
    """The requested external fixed IPs, or one address of the first IPv4 subnet with room."""
    v4 = [s for s in network.subnets if s.ip_version == 4]
    if not v4:
        raise bad_request("router", f"Network {network.id} does not contain any IPv4 subnet")
    if not requested:
        for index, subnet in enumerate(v4):
            try:
                await ipam.allocate(session, subnet, port.id)
                return
            except Conflict:  # a full subnet: the next one may have room
                if index == len(v4) - 1:
                    raise
    if not isinstance(requested, list):
        raise bad_attribute("external_gateway_info", f"'{requested}' is not a list")
    by_id = {s.id: s for s in network.subnets}
    for entry in requested:
        if not isinstance(entry, dict):
            raise bad_attribute("external_gateway_info", f"'{entry}' is not a dictionary")
        subnet = by_id.get(str(entry.get("subnet_id") or "")) if entry.get("subnet_id") else None
        if subnet is None and entry.get("subnet_id"):
            raise invalid_input(
                f"Failed to create port on network {network.id}, because fixed_ips "
                f"included invalid subnet {entry['subnet_id']}"
            )
        if subnet is None:
            address = entry.get("ip_address")
            subnet = next(
                (s for s in v4 if _contains(s.cidr, address)),
                None,
            )
            if subnet is None:
                raise invalid(
                    f"IP address {address} is not a valid IP for any of the subnets on the "
                    "specified network.",
                    "InvalidIpForNetwork",
                )
        await ipam.allocate(session, subnet, port.id, entry.get("ip_address"))


def _contains(cidr: str, address: Any) -> bool:
    try:
        return ipaddress.ip_address(str(address)) in ipaddress.ip_network(cidr)
    except ValueError:
        return False


async def _set_gateway(
    session: AsyncSession, ctx: RequestContext, router: Router, info: Any, action: str
) -> None:
    if info is not None and not isinstance(info, dict):
        raise bad_attribute("external_gateway_info", f"'{info}' is not a dictionary")
    if not info:
        await _clear_gateway(session, ctx, router)
        return
    network_id = str(info.get("network_id") or "")
    if not network_id:
        raise bad_attribute(
            "external_gateway_info",
            "Validation of dictionary's keys failed. Expected keys: {'network_id'} "
            f"Provided keys: {subnet_attrs.keys_text(info)}",
        )
    network = await networks.get(session, ctx, network_id)
    if not network.external:
        raise invalid(
            f"Bad router request: Network {network_id} is not an external network.",
            "BadRequest",
        )
    snat = flag(info, "enable_snat", True)
    requested = info.get("external_fixed_ips")
    if router.gw_network_id == network_id and router.gw_port_id and not requested:
        router.enable_snat = snat
        return
    if router.gw_network_id is not None and router.gw_network_id != network_id:
        await _clear_gateway(session, ctx, router)
    elif router.gw_port is not None:
        await drop_port(session, ctx, router.gw_port)
    port = await new_port(
        session, ctx, network, project_id="", device_id=router.id, device_owner=GATEWAY
    )
    await _allocate_on(session, network, port, requested)
    await announce_port(session, ctx, port, events.CREATE)
    router.gw_network_id = network_id
    router.gw_port_id = port.id
    router.enable_snat = snat
    await session.flush()
    await session.refresh(router, ["gw_port"])


async def _clear_gateway(session: AsyncSession, ctx: RequestContext, router: Router) -> None:
    if router.gw_network_id is None:
        return
    used = await session.scalar(select(exists().where(FloatingIp.router_id == router.id)))
    if used:
        raise conflict(
            "RouterExternalGatewayInUseByFloatingIp",
            f"Gateway cannot be updated for router {router.id}, since a gateway to external "
            f"network {router.gw_network_id} is required by one or more floating IPs.",
        )
    gw_port = router.gw_port
    router.gw_network_id = None
    router.gw_port_id = None
    await session.flush()
    if gw_port is not None:
        await drop_port(session, ctx, gw_port)
    await session.refresh(router, ["gw_port"])


def _check_gateway_shape(body: dict[str, Any]) -> None:
    """The gateway's shape, checked before its policy (as Neutron's API layer does)."""
    info = body.get("external_gateway_info")
    if info is not None and not isinstance(info, dict):
        raise bad_attribute("external_gateway_info", f"'{info}' is not a dictionary")
    if info and info.get("network_id") is not None:
        uuid_attr(info, "network_id")


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> Router:
    _check_gateway_shape(body)
    if "routes" in body:  # extraroute: allow_post False
        raise invalid("Attribute 'routes' not allowed in POST")
    policy.enforce(ctx, "create", "router", body)
    hints = zone_hints(settings, "router", body)
    router = Router(
        id=new_id(),
        project_id=owner_of(ctx, body),
        name=text(body, "name"),
        description=text(body, "description"),
        admin_state_up=flag(body, "admin_state_up", True),
        status="ACTIVE",
        enable_snat=True,
        host=await scheduling.network_node(session, settings, "router", hints),
        generation=0,
        availability_zone_hints=hints,
    )
    session.add(router)
    await session.flush()
    await quotas.reserve(session, settings, router.project_id, "router")
    await session.refresh(router, ["gw_port"])
    if body.get("external_gateway_info") is not None:
        await _set_gateway(session, ctx, router, body["external_gateway_info"], "create_router")
    changes.mark_router(session, router)
    await session.flush()
    await emit(session, ctx, router, events.CREATE)
    return router


async def update(
    session: AsyncSession, ctx: RequestContext, router_id: str, body: dict[str, Any]
) -> Router:
    _check_gateway_shape(body)
    policy.enforce(ctx, "update", "router", body)
    if "availability_zone_hints" in body:
        raise read_only("availability_zone_hints")
    routes = extraroute.parse(body["routes"]) if "routes" in body else None
    router = await get(session, ctx, router_id, lock=True)
    if "name" in body:
        router.name = text(body, "name")
    if "description" in body:
        router.description = text(body, "description")
    if "admin_state_up" in body:
        router.admin_state_up = flag(body, "admin_state_up", router.admin_state_up)
    if "external_gateway_info" in body:
        await _set_gateway(session, ctx, router, body["external_gateway_info"], "update_router")
    if routes is not None:
        await extraroute.check(session, router, routes)
        router.routes = routes
    touch(router)
    changes.mark_router(session, router)
    await session.flush()
    await emit(session, ctx, router, events.UPDATE)
    return router


async def change_routes(
    session: AsyncSession, ctx: RequestContext, router_id: str, body: Any, *, add: bool
) -> Router:
    """extraroute-atomic: add or remove routes in the router's list, under its lock."""
    given = extraroute.action_routes(body)
    router = await get(session, ctx, router_id, lock=True)
    policy.enforce(ctx, "update", "router", {"routes": given})
    old = [dict(r) for r in router.routes or ()]
    routes = extraroute.added(old, given) if add else extraroute.removed(old, given)
    if routes == old:
        return router
    return await update(session, ctx, router_id, {"routes": routes})


async def remove(session: AsyncSession, ctx: RequestContext, router_id: str) -> None:
    router = await get(session, ctx, router_id, lock=True)
    attached = await interfaces(session, router.id)
    if attached:
        ports_left = ", ".join(row.port_id for row in attached)
        raise conflict("RouterInUse", f"Router {router_id} has ports still attached: {ports_left}")
    await _clear_gateway(session, ctx, router)
    changes.mark_router(session, router)
    await session.delete(router)
    await quotas.release(session, router.project_id, "router")
    await session.flush()
    await emit(session, ctx, router, events.DELETE)


def _interface_info(router: Router, port: Port, subnet_id: str) -> dict[str, Any]:
    return {
        "id": router.id,
        "tenant_id": router.project_id,
        "project_id": router.project_id,
        "subnet_id": subnet_id,
        "subnet_ids": [subnet_id],
        "port_id": port.id,
        "network_id": port.network_id,
    }


async def _check_overlap(session: AsyncSession, router: Router, subnet: Subnet) -> None:
    net = ipaddress.ip_network(subnet.cidr)
    for row in await interfaces(session, router.id):
        if row.subnet_id == subnet.id:
            raise bad_request("router", f"Router already has a port on subnet {subnet.id}")
        other = await session.get(Subnet, row.subnet_id)
        if other is not None and ipaddress.ip_network(other.cidr).overlaps(net):
            raise bad_request(
                "router",
                f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps "
                f"with cidr {other.cidr} of subnet {other.id}",
            )


async def _attach(session: AsyncSession, router: Router, port: Port, subnet: Subnet) -> None:
    if not await try_insert(
        session, RouterPort(port_id=port.id, router_id=router.id, subnet_id=subnet.id)
    ):
        raise bad_request("router", f"Router already has a port on subnet {subnet.id}")


async def add_interface(
    session: AsyncSession, ctx: RequestContext, router_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    router = await get(session, ctx, router_id, lock=True)
    _check_interface_body(body, removal=False)
    if body.get("port_id"):
        port = await port_rows.get(session, ctx, str(body["port_id"]))
        if port.device_owner or port.device_id:
            raise conflict(
                "PortInUse",
                f"Unable to complete operation on port {port.id} for network "
                f"{port.network_id}. Port already has an attached device {port.device_id}.",
            )
        v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
        if len(v4) != 1:
            raise bad_request(
                "router",
                "Router port must have at least one fixed IP"
                if not port.fixed_ips
                else "Cannot have multiple IPv4 subnets on router port",
            )
        subnet = await subnets.get(session, ctx, v4[0].subnet_id)
        await _check_overlap(session, router, subnet)
        port.device_owner, port.device_id = INTERFACE, router.id
        touch(port)
        await _attach(session, router, port, subnet)
        await announce_port(session, ctx, port, events.UPDATE)
    else:
        subnet = await subnets.get(session, ctx, str(body["subnet_id"]))
        await session.refresh(subnet, with_for_update=True)  # its gateway cannot move meanwhile
        network = await networks.get(session, ctx, subnet.network_id)
        if subnet.project_id != router.project_id and not (network.shared or ctx.is_admin):
            raise not_found("Subnet", subnet.id)
        if not subnet.gateway_ip:
            raise bad_request("router", "Subnet for router interface must have a gateway IP")
        await _check_overlap(session, router, subnet)
        port = await new_port(
            session,
            ctx,
            network,
            project_id=router.project_id,
            device_id=router.id,
            device_owner=INTERFACE,
        )
        held = IpAllocation(
            subnet_id=subnet.id,
            ip_address=subnet.gateway_ip,
            port_id=port.id,
            network_id=subnet.network_id,
        )
        if not await try_insert(session, held):
            raise conflict(
                "IpAddressAlreadyAllocated",
                f"IP address {subnet.gateway_ip} already allocated in subnet {subnet.id}",
            )
        await _attach(session, router, port, subnet)
        await announce_port(session, ctx, port, events.CREATE)
    touch(router)
    changes.mark_router(session, router)
    await session.flush()
    await emit(session, ctx, router, events.UPDATE)
    return _interface_info(router, port, subnet.id)


async def remove_interface(
    session: AsyncSession, ctx: RequestContext, router_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    router = await get(session, ctx, router_id, lock=True)
    _check_interface_body(body, removal=True)
    query = select(RouterPort).where(RouterPort.router_id == router.id)
    if body.get("port_id"):
        query = query.where(RouterPort.port_id == str(body["port_id"]))
    if body.get("subnet_id"):
        query = query.where(RouterPort.subnet_id == str(body["subnet_id"]))
    row = (await session.scalars(query)).first()
    if row is None:
        if body.get("port_id"):
            raise not_found_interface(router.id, str(body["port_id"]))
        raise NotFound(
            f"Router {router.id} has no interface on subnet {body['subnet_id']}",
            details={"type": "RouterInterfaceNotFoundForSubnet"},
        )
    subnet = await session.get(Subnet, row.subnet_id)
    assert subnet is not None
    fips = await session.scalars(
        select(FloatingIp.fixed_ip_address).where(FloatingIp.router_id == router.id)
    )
    if any(_contains(subnet.cidr, ip) for ip in fips):
        raise conflict(
            "RouterInterfaceInUseByFloatingIP",
            f"Router interface for subnet {subnet.id} on router {router.id} cannot be "
            "deleted, as it is required by one or more floating IPs.",
        )
    extraroute.check_interface_unused(router, subnet)
    port = await session.get(Port, row.port_id)
    assert port is not None
    info = _interface_info(router, port, subnet.id)
    await drop_port(session, ctx, port)
    touch(router)
    changes.mark_router(session, router)
    await session.flush()
    await emit(session, ctx, router, events.UPDATE)
    return info


def _check_interface_body(body: Any, *, removal: bool) -> None:
    """Neutron's ``_validate_interface_info``: one of the two (both only to remove), ids."""
    given = [key for key in ("port_id", "subnet_id") if isinstance(body, dict) and key in body]
    if not given:
        raise bad_request("router", "Either subnet_id or port_id must be specified")
    for key in given:
        if not isinstance(body[key], str) or not UUID.match(body[key]):
            raise bad_request("router", f"'{body[key]}' is not a valid UUID")
    if len(given) == 2 and not removal:
        raise bad_request("router", "Cannot specify both subnet-id and port-id")


def not_found_interface(router_id: str, what: str) -> NotFound:
    return NotFound(
        f"Router {router_id} does not have an interface with id {what}",
        details={"type": "RouterInterfaceNotFound"},
    )


async def emit(session: AsyncSession, ctx: RequestContext, router: Router, action: str) -> None:
    rows = [] if action == events.DELETE else await interfaces(session, router.id)
    payload = RouterPayload(
        id=router.id,
        project_id=router.project_id,
        name=router.name,
        status=router.status,
        external_network_id=router.gw_network_id,
        enable_snat=router.enable_snat if router.gw_network_id else None,
        interfaces=[{"port_id": r.port_id, "subnet_id": r.subnet_id} for r in rows],
    )
    await add_event(
        session, ROUTER.format(action=action), payload, project_id=router.project_id, ctx=ctx
    )
