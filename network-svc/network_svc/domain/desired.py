"""The desired state of hosts, built from the network DB: what the agents are sent.

    state = await port_state(session, port)    # PortState: network, port, rules, generation
    await deps.agent(port.host_id).wire_port(state)

DHCP hosts are every port of the network with a fixed IP. A rule naming a remote group
stays one rule (with ``remote_group_id``); ``remote_groups`` maps each such group to its
ports' addresses, which the agent keeps in one member set per group and ethertype.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..contracts import (
    DhcpHost,
    FloatingIpMapping,
    HostRoute,
    HostState,
    NetworkState,
    PortInfo,
    PortState,
    RouterGateway,
    RouterInterface,
    RouterState,
    Rule,
    SubnetState,
    TunnelEntry,
    TunnelPeer,
)
from ..db.models import (
    FloatingIp,
    IpAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Router,
    RouterPort,
    SecurityGroupRule,
    Subnet,
)
from . import scheduling
from .changes import generation_of
from .port_rows import DHCP_SERVER, GATEWAY, INTERFACE


async def network_state(
    session: AsyncSession, network_id: str, host: str | None = None
) -> NetworkState:
    """The network as ``host`` serves it: whether it runs the DHCP server and, for VXLAN,
    the other hosts' tunnel endpoints and ports (l2-population). ``host`` None: the
    network alone (every host would run DHCP, no tunnel entries)."""
    net = (await session.scalars(select(Network).where(Network.id == network_id))).one()
    rows = (
        await session.execute(
            select(Port.mac_address, IpAllocation.ip_address, IpAllocation.subnet_id, DHCP_SERVER)
            .join(IpAllocation, IpAllocation.port_id == Port.id)
            .where(Port.network_id == network_id)
            .order_by(IpAllocation.ip_address)
        )
    ).all()
    # dnsmasq listens on its port's address of each subnet and leases to every other port.
    server = {subnet: ip for _mac, ip, subnet, is_server in rows if is_server}
    dhcp_port = (
        await session.execute(
            select(Port.mac_address, Port.host_id).where(Port.network_id == network_id, DHCP_SERVER)
        )
    ).first()
    peers = None
    if host is not None and net.network_type == "vxlan":
        peers = await tunnel_peers(session, network_id, host)
    return NetworkState(
        network_id=net.id,
        segmentation_type=net.network_type,
        segmentation_id=net.segmentation_id,
        mtu=net.mtu,
        subnets=[
            SubnetState(
                subnet_id=s.id,
                cidr=s.cidr,
                gateway_ip=s.gateway_ip,
                enable_dhcp=s.enable_dhcp,
                dns_nameservers=list(s.dns_nameservers or ()),
                host_routes=[HostRoute.model_validate(r) for r in s.host_routes or ()],
                dhcp_server_ip=server.get(s.id),
            )
            for s in net.subnets
        ],
        dhcp_hosts=[
            DhcpHost(mac=mac, ip=ip, hostname="host-" + ip.replace(".", "-").replace(":", "-"))
            for mac, ip, _subnet, is_server in rows
            if not is_server
        ],
        generation=await generation_of(session, "networks", net.id),
        # an unbound DHCP port (no network nodes): every host serving the network runs one
        dhcp=dhcp_port is None or host is None or dhcp_port.host_id in ("", host),
        dhcp_mac=dhcp_port.mac_address if dhcp_port else None,
        peers=peers,
    )


async def port_hosts(session: AsyncSession, network_id: str) -> dict[str, list[tuple[str, str]]]:
    """Where each port of the network sits: host -> [(port id, MAC)]. A port is bound
    there (a server's, or the DHCP port on its network node), or it is a leg of a router
    that host runs."""
    bound = await session.execute(
        select(Port.host_id, Port.id, Port.mac_address).where(
            Port.network_id == network_id, Port.host_id != ""
        )
    )
    legs = await session.execute(
        select(Router.host, Port.id, Port.mac_address)
        .join(Port, Port.device_id == Router.id)
        .where(
            Port.network_id == network_id,
            Port.device_owner.in_((INTERFACE, GATEWAY)),
            Router.host != "",
            # the router's own legs, not a tenant's port that only names the router
            or_(
                Router.gw_port_id == Port.id,
                exists().where(RouterPort.port_id == Port.id, RouterPort.router_id == Router.id),
            ),
        )
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for host, port_id, mac in [*bound, *legs]:
        out.setdefault(host, []).append((port_id, mac))
    return out


async def tunnel_peers(session: AsyncSession, network_id: str, host: str) -> list[TunnelPeer]:
    """Every other host serving the network, with a known endpoint, and its ports there."""
    where = await port_hosts(session, network_id)
    if not set(where) - {host}:
        return []
    endpoints = await scheduling.tunnel_endpoints(session)
    addresses: dict[str, list[str]] = {}
    rows = await session.execute(
        select(IpAllocation.port_id, IpAllocation.ip_address)
        .where(IpAllocation.network_id == network_id)
        .order_by(IpAllocation.ip_address)
    )
    for port_id, ip in rows:
        addresses.setdefault(port_id, []).append(ip)
    return [
        TunnelPeer(
            host=other,
            vtep=endpoints[other],
            entries=[
                TunnelEntry(mac=mac, ips=addresses.get(port_id, []))
                for port_id, mac in sorted(ports, key=lambda p: p[1])
            ],
        )
        for other, ports in sorted(where.items())
        if other != host and other in endpoints
    ]


async def _rules(session: AsyncSession, port: Port) -> list[Rule]:
    groups = [link.security_group_id for link in port.security_groups]
    if not groups:
        return []
    return await rules_of_groups(session, groups)


async def rules_of_groups(session: AsyncSession, groups: list[str]) -> list[Rule]:
    """The rules of these groups, in creation order (a port's whole rule set)."""
    rules = list(
        await session.scalars(
            select(SecurityGroupRule)
            .where(SecurityGroupRule.security_group_id.in_(groups))
            .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
        )
    )
    return [
        Rule(
            direction=rule.direction,
            ethertype=rule.ethertype,
            protocol=rule.protocol,
            port_range_min=rule.port_range_min,
            port_range_max=rule.port_range_max,
            remote_ip_prefix=rule.remote_ip_prefix,
            remote_group_id=rule.remote_group_id,
        )
        for rule in rules
    ]


async def members(session: AsyncSession, group_ids: list[str]) -> dict[str, list[str]]:
    """Each group's member addresses (of its ports, bound or not), sorted."""
    out: dict[str, list[str]] = {group_id: [] for group_id in group_ids}
    if not group_ids:
        return out
    rows = await session.execute(
        select(PortSecurityGroup.security_group_id, IpAllocation.ip_address)
        .join(IpAllocation, IpAllocation.port_id == PortSecurityGroup.port_id)
        .where(PortSecurityGroup.security_group_id.in_(sorted(set(group_ids))))
        .order_by(PortSecurityGroup.security_group_id, IpAllocation.ip_address)
    )
    for group_id, ip in rows:
        out[group_id].append(ip)
    return out


async def member_set_hosts(session: AsyncSession, group_ids: list[str]) -> dict[str, list[str]]:
    """For each host, the given groups that a rule of one of its bound ports matches on."""
    rows = await session.execute(
        select(Port.host_id, SecurityGroupRule.remote_group_id)
        .join(PortSecurityGroup, PortSecurityGroup.port_id == Port.id)
        .join(
            SecurityGroupRule,
            SecurityGroupRule.security_group_id == PortSecurityGroup.security_group_id,
        )
        .where(SecurityGroupRule.remote_group_id.in_(sorted(set(group_ids))), Port.host_id != "")
        .distinct()
    )
    out: dict[str, list[str]] = {}
    for host, group_id in rows:
        out.setdefault(host, []).append(group_id)
    return {host: sorted(groups) for host, groups in sorted(out.items())}


def _port(port: Port) -> PortInfo:
    return PortInfo(
        port_id=port.id,
        network_id=port.network_id,
        mac=port.mac_address,
        fixed_ips=[a.ip_address for a in port.fixed_ips],
        port_security=port.port_security_enabled,
    )


async def port_state(
    session: AsyncSession, port: Port, network: NetworkState | None = None
) -> PortState:
    """What ``wire_port`` takes for one port (on its host); ``network``: its network's
    state on that host, when the caller has it already."""
    rules = await _rules(session, port)
    remote = sorted({r.remote_group_id for r in rules if r.remote_group_id})
    return PortState(
        network=network or await network_state(session, port.network_id, port.host_id),
        port=_port(port),
        rules=rules,
        remote_groups=await members(session, remote),
        generation=await generation_of(session, "ports", port.id),
    )


async def host_state(session: AsyncSession, host: str) -> HostState:
    """Every network and port bound to ``host``: what its agent must have, nothing more.

    The ports are the servers' (the DHCP port bound here brings its network, whose DHCP
    server the host runs); each network as this host serves it (its tunnel peers)."""
    ports = list(
        await session.scalars(
            select(Port).where(Port.host_id == host, ~DHCP_SERVER).order_by(Port.id)
        )
    )
    networks: dict[str, NetworkState] = {}

    async def network(network_id: str) -> NetworkState:
        if network_id not in networks:
            networks[network_id] = await network_state(session, network_id, host)
        return networks[network_id]

    items = [await port_state(session, port, await network(port.network_id)) for port in ports]
    dhcp = await session.scalars(select(Port.network_id).where(Port.host_id == host, DHCP_SERVER))
    for network_id in sorted(set(dhcp)):
        await network(network_id)
    routers = await host_routers(session, host)
    for router in routers:
        for state in router.networks:
            networks.setdefault(state.network_id, state)
    return HostState(host=host, networks=list(networks.values()), ports=items, routers=routers)


async def router_state(session: AsyncSession, router_id: str) -> RouterState | None:
    """What ``sync_router`` takes: legs, gateway, floating IPs and their networks.

    None when the router no longer exists (the agent then removes its namespace).
    """
    router = (
        await session.scalars(
            select(Router).where(Router.id == router_id).execution_options(populate_existing=True)
        )
    ).first()
    if router is None:
        return None
    # A leg holds its port's address on the subnet: the subnet's gateway when the
    # interface was added by subnet (the gateway cannot move while it is held), or the
    # port's own address when it was added by port.
    legs = await session.execute(
        select(
            Port.id,
            Port.network_id,
            Port.mac_address,
            Subnet.id,
            Subnet.cidr,
            IpAllocation.ip_address,
        )
        .join(RouterPort, RouterPort.port_id == Port.id)
        .join(Subnet, Subnet.id == RouterPort.subnet_id)
        .join(
            IpAllocation,
            (IpAllocation.port_id == Port.id) & (IpAllocation.subnet_id == Subnet.id),
        )
        .where(RouterPort.router_id == router.id)
        .order_by(Port.id)
    )
    interfaces = [
        RouterInterface(
            port_id=port_id,
            network_id=network_id,
            subnet_id=subnet_id,
            mac=mac,
            cidrs=[_on(address, cidr)],
        )
        for port_id, network_id, mac, subnet_id, cidr, address in legs
    ]
    gateway = await _gateway(session, router)
    fips = await session.execute(
        select(FloatingIp.floating_ip_address, FloatingIp.fixed_ip_address)
        .where(FloatingIp.router_id == router.id, FloatingIp.fixed_port_id.is_not(None))
        .order_by(FloatingIp.floating_ip_address)
    )
    network_ids = sorted(
        {leg.network_id for leg in interfaces} | ({gateway.network_id} if gateway else set())
    )
    return RouterState(
        router_id=router.id,
        generation=router.generation,
        admin_state_up=router.admin_state_up,
        enable_snat=router.enable_snat,
        gateway=gateway,
        interfaces=interfaces,
        floating_ips=[FloatingIpMapping(floating_ip=f, fixed_ip=x) for f, x in fips if x],
        routes=[HostRoute.model_validate(r) for r in router.routes or ()],
        networks=[await network_state(session, n, router.host) for n in network_ids],
    )


def _on(address: str, cidr: str) -> str:
    return f"{address}/{ipaddress.ip_network(cidr).prefixlen}"


async def _gateway(session: AsyncSession, router: Router) -> RouterGateway | None:
    if router.gw_port_id is None:
        return None
    port = await session.get(Port, router.gw_port_id)
    if port is None:
        return None
    rows = await session.execute(
        select(IpAllocation.ip_address, Subnet.cidr, Subnet.gateway_ip)
        .join(Subnet, Subnet.id == IpAllocation.subnet_id)
        .where(IpAllocation.port_id == port.id)
        .order_by(IpAllocation.ip_address)
    )
    addresses = [(ip, cidr, gw) for ip, cidr, gw in rows]
    return RouterGateway(
        port_id=port.id,
        network_id=port.network_id,
        mac=port.mac_address,
        cidrs=[_on(ip, cidr) for ip, cidr, _gw in addresses],
        next_hop=next((gw for _ip, _cidr, gw in addresses if gw), None),
    )


async def host_routers(session: AsyncSession, host: str) -> list[RouterState]:
    """The desired state of every router ``host`` runs."""
    ids = await session.scalars(select(Router.id).where(Router.host == host).order_by(Router.id))
    states = [await router_state(session, router_id) for router_id in list(ids)]
    return [state for state in states if state is not None]
