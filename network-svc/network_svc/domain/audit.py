"""``stackling audit network``: the DB against itself and against every agent's host.

In the DB: duplicate MACs or IPs, addresses outside their subnet, DHCP subnets without
a DHCP address, ports bound but still DOWN past their deadline. On each host with an
agent or with bound ports: bridges, DHCP namespaces (dnsmasq running, the leases it
serves), router namespaces, firewall chains, security-group member sets and the VXLAN
devices' forwarding entries (l2-population) the DB expects but the host lacks (missing),
and ours that the DB does not know (orphans); a port wired on a host other than the one
it is bound to is a mismatch. A host whose ports are bound but whose agent is down or
silent is a finding too, with the DHCP servers and routers it was to run: nothing there
is being kept right, and nothing of it is moved to a live host by the audit.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.audit import AuditReport
from common_rpc.errors import RpcError

from ..contracts import HostState, Inventory
from ..db.models import IpAllocation, Network, Port, Router, Subnet
from ..drivers.base import TunnelPeer, forwarding_entries, member_sets
from ..drivers.names import Names
from ..wiring import Deps
from . import desired, dhcp
from .port_rows import DHCP_SERVER

AGENT_BINARY = "network-agent"


async def audit(deps: Deps, *, agent_timeout_s: float = 10.0) -> AuditReport:
    report = AuditReport(service="network")
    async with deps.sessions() as session:
        await _check_db(session, report, deps.settings.port_bind_deadline_s)
        alive = set(await deps.agents.alive_hosts(AGENT_BINARY))
        placed = (
            await session.execute(select(Port.id, Port.host_id).where(Port.host_id != ""))
        ).all()
        bound = {host for _id, host in placed}
        # A router's host counts once its agent was seen: one that never reported may be
        # a deployment without agents (routers placed on the API's own host name).
        known = {a.host for a in await deps.agents.list(binary=AGENT_BINARY)}
        placed_routers = set(await session.scalars(select(Router.host).where(Router.host != "")))
        hosts = sorted(alive | bound | (placed_routers & known))
        states = {host: await desired.host_state(session, host) for host in hosts}
        dhcp_servers = (
            await session.execute(
                select(Port.host_id, Port.network_id).where(DHCP_SERVER, Port.host_id != "")
            )
        ).all()
        routers = (
            await session.execute(select(Router.host, Router.id).where(Router.host != ""))
        ).all()
    # the first hex digits of each bound port's id (its chains carry them) -> (id, host)
    where = {_fragment(port_id): (port_id, host) for port_id, host in placed}
    report.count("hosts", len(hosts))
    for host in hosts:
        state = states[host]
        if host not in alive:
            report.add(
                "unreachable",
                "host",
                host,
                host=host,
                detail=f"{len(state.ports)} port(s) bound here, and its agent is down",
            )
            for node, network_id in dhcp_servers:
                if node == host:
                    report.add("unreachable", "dhcp_server", network_id, host=host,
                               detail="the network's DHCP server is on a dead host")  # fmt: skip
            for node, router_id in routers:
                if node == host:
                    report.add("unreachable", "router", router_id, host=host,
                               detail="the router is on a dead host")  # fmt: skip
            continue
        try:
            found = await deps.agent(host, timeout=agent_timeout_s).inventory()
        except RpcError as exc:
            report.add("unreachable", "host", host, host=host, detail=str(exc))
            continue
        _compare_host(report, host, state, found, where)
    return report


def _fragment(port_id: str) -> str:
    return re.sub(r"[^0-9a-f]", "", port_id.lower())[:11]


async def _check_db(session: AsyncSession, report: AuditReport, bind_deadline_s: float) -> None:
    report.count("networks", await session.scalar(select(func.count()).select_from(Network)) or 0)
    report.count("ports", await session.scalar(select(func.count()).select_from(Port)) or 0)
    dup_macs = await session.execute(
        select(Port.network_id, Port.mac_address)
        .group_by(Port.network_id, Port.mac_address)
        .having(func.count() > 1)
    )
    for network_id, mac in dup_macs:
        report.add("duplicate", "mac_address", mac, detail=f"on network {network_id}")
    dup_ips = await session.execute(
        select(IpAllocation.network_id, IpAllocation.ip_address)
        .group_by(IpAllocation.network_id, IpAllocation.ip_address)
        .having(func.count() > 1)
    )
    for network_id, ip in dup_ips:
        report.add("duplicate", "ip_address", ip, detail=f"on network {network_id}")
    allocations = await session.execute(
        select(IpAllocation.ip_address, IpAllocation.port_id, Subnet.cidr).join(
            Subnet, Subnet.id == IpAllocation.subnet_id
        )
    )
    count = 0
    for ip, port_id, cidr in allocations:
        count += 1
        if ipaddress.ip_address(ip) not in ipaddress.ip_network(cidr):
            report.add("mismatch", "ip_address", ip, detail=f"port {port_id}: not in {cidr}")
    report.count("ip_allocations", count)
    for subnet in await session.scalars(select(Subnet)):
        if not dhcp.serves(subnet):
            continue
        held = await session.scalar(
            select(IpAllocation.ip_address)
            .join(Port, Port.id == IpAllocation.port_id)
            .where(IpAllocation.subnet_id == subnet.id, DHCP_SERVER)
        )
        if held is None:
            report.add("missing", "dhcp_port", subnet.id, detail="DHCP subnet without its address")
    # Stored naive in SQLite: compare as UTC without tzinfo, the way the rows hold it.
    deadline = (datetime.now(UTC) - timedelta(seconds=bind_deadline_s)).replace(tzinfo=None)
    stuck = await session.scalars(
        select(Port).where(Port.host_id != "", Port.status == "DOWN", Port.updated_at < deadline)
    )
    for port in stuck:
        report.add(
            "stuck",
            "port",
            port.id,
            host=port.host_id,
            detail=f"bound but DOWN since {port.updated_at:%Y-%m-%d %H:%M:%S}",
        )


def _compare_host(
    report: AuditReport,
    host: str,
    state: HostState,
    found: Inventory,
    where: dict[str, tuple[str, str]] | None = None,
) -> None:
    names = Names(found.prefix)
    links = set(found.links)
    networks = {n.network_id: n for n in state.networks}
    bridges = {names.bridge(n): n for n in networks}
    report.count("bridges", len(bridges))
    for bridge, network_id in sorted(bridges.items()):
        if bridge not in links:
            report.add("missing", "bridge", bridge, host=host, detail=f"network {network_id}")
    bridge_head = names.prefix + "brq"
    for link in sorted(links):
        if link.startswith(bridge_head) and link not in bridges:
            report.add("orphan", "bridge", link, host=host, detail="no network bound here")

    served = found.dhcp
    wanted = {n: s for n, s in networks.items() if s.dhcp and any(x.enable_dhcp for x in s.subnets)}
    report.count("dhcp_servers", len(wanted))
    for network_id, net_state in sorted(wanted.items()):
        have = served.get(network_id)
        if have is None:
            report.add("missing", "dhcp_namespace", network_id, host=host)
            continue
        if not have.running:
            report.add("missing", "dnsmasq", network_id, host=host, detail="not running")
        expected = sorted((h.mac.lower(), h.ip) for h in net_state.dhcp_hosts)
        if sorted(have.hosts) != expected:
            report.add(
                "mismatch",
                "dhcp_hosts",
                network_id,
                host=host,
                detail=f"serves {len(have.hosts)} host(s), the DB has {len(expected)}",
            )
    for network_id in sorted(set(served) - set(wanted)):
        report.add("orphan", "dhcp_namespace", network_id, host=host, detail="no such network here")

    namespaces = set(found.routers)
    expected_routers = {
        names.router_namespace(r.router_id): r.router_id for r in state.routers or () if r.wanted
    }
    report.count("routers", len(expected_routers))
    for namespace, router_id in sorted(expected_routers.items()):
        if namespace not in namespaces:
            report.add("missing", "router_namespace", router_id, host=host)
    for namespace in sorted(namespaces - set(expected_routers)):
        report.add("orphan", "router_namespace", namespace, host=host, detail="no router here")

    chains = set(found.chains)
    ports = [item.port.port_id for item in state.ports]
    report.count("port_firewalls", len(ports))
    for port_id in ports:
        if names.chain("i", port_id) not in chains:
            report.add("missing", "port_firewall", port_id, host=host)
    known = {names.chain(kind, port_id) for port_id in ports for kind in ("a", "i", "o", "s")}
    dispatch = names.chain("fwd")
    misplaced: set[str] = set()
    head = names.chain_prefix()
    for chain in sorted(chains - known - {dispatch}):
        port_id, elsewhere = (where or {}).get(chain[len(head) + 1 :], ("", ""))
        if elsewhere and elsewhere != host:
            if port_id not in misplaced:
                misplaced.add(port_id)
                report.add("mismatch", "port", port_id, host=host,
                           detail=f"wired here, bound to {elsewhere}")  # fmt: skip
            continue
        report.add("orphan", "port_firewall", chain, host=host, detail="no port bound here")
    if found.sets is not None:  # agents before API 1.3 do not list them
        _compare_sets(report, host, names, state, set(found.sets))
    if found.tunnels is not None:  # agents before API 1.4 do not list them
        _compare_tunnels(report, host, names, state, found.tunnels)


def _compare_tunnels(
    report: AuditReport, host: str, names: Names, state: HostState, found: dict[str, list[str]]
) -> None:
    """l2-population: each VXLAN device holds exactly its peers' FDB and ARP entries."""
    checked = 0
    for network in state.networks:
        if network.peers is None or network.segmentation_id is None:
            continue
        device = names.vxlan(network.segmentation_id)
        peers = [
            TunnelPeer(p.vtep, tuple((e.mac, tuple(e.ips)) for e in p.entries))
            for p in network.peers
        ]
        fdb, arp = forwarding_entries(peers)
        expected = {f"{mac} {vtep}" for mac, vtep in fdb} | {f"arp {i} {m}" for i, m in arp.items()}
        checked += len(expected)
        have = set(found.get(device, ()))
        for entry in sorted(expected - have):
            report.add("missing", "tunnel_entry", entry, host=host, detail=f"on {device}")
        for entry in sorted(have - expected):
            report.add("orphan", "tunnel_entry", entry, host=host, detail=f"on {device}")
    report.count("tunnel_entries", checked)


def _compare_sets(
    report: AuditReport, host: str, names: Names, state: HostState, found: set[str]
) -> None:
    """Member sets: one per (group, ethertype) that a bound port's rules match on."""
    expected: dict[str, str] = {}
    for item in state.ports:
        for group_id, ethertype in member_sets(item.rules, item.port.port_security):
            expected[names.ipset(group_id, ethertype)] = group_id
    report.count("member_sets", len(expected))
    for name, group_id in sorted(expected.items()):
        if name not in found:
            report.add("missing", "member_set", name, host=host, detail=f"group {group_id}")
    for name in sorted(found - set(expected)):
        report.add("orphan", "member_set", name, host=host, detail="no bound port's rule uses it")
