"""Which network node runs a network's DHCP server or a router (``NETWORK_NETWORK_NODES``).

The alive node (its network-agent heartbeats, admin state up) with the fewest DHCP
servers and routers wins, the settings' order breaking ties; when none is alive the
least loaded listed node is taken all the same, and serves once its agent comes. A node
that dies keeps what it has: its objects are reported by the audit, not moved.

    host = await network_node(session, settings, "dhcp")    # "" without network nodes
    host = await network_node(session, settings, "router")  # l3_host or this host without
    host = await network_node(session, settings, "dhcp", ["az1"])  # a node in zone az1

Availability zone hints narrow the nodes to those in the hinted zones (any of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.tables import agents

from ..db.models import Port, Router
from ..settings import NetworkSettings
from .port_rows import DHCP_SERVER

AGENT_BINARY = "network-agent"


async def alive_agents(session: AsyncSession, down_after_s: float) -> set[str]:
    """Hosts whose network-agent reported within ``down_after_s`` and is not disabled."""
    since = datetime.now(UTC) - timedelta(seconds=down_after_s)
    rows = await session.execute(
        select(agents.c.host, agents.c.last_heartbeat, agents.c.admin_state_up).where(
            agents.c.binary == AGENT_BINARY
        )
    )
    out = set()
    for host, last, up in rows:
        last = last if last.tzinfo else last.replace(tzinfo=UTC)  # SQLite: naive
        if up and last >= since:
            out.add(host)
    return out


async def tunnel_endpoints(session: AsyncSession) -> dict[str, str]:
    """Each host's VXLAN endpoint, as its network-agent reports it (``tunneling_ip``)."""
    rows = await session.execute(
        select(agents.c.host, agents.c.capabilities).where(agents.c.binary == AGENT_BINARY)
    )
    return {
        host: str(caps["tunneling_ip"])
        for host, caps in rows
        if isinstance(caps, dict) and caps.get("tunneling_ip")
    }


async def load(session: AsyncSession) -> dict[str, int]:
    """DHCP servers and routers per host."""
    out: dict[str, int] = {}
    dhcp = select(Port.host_id, func.count()).where(DHCP_SERVER, Port.host_id != "")
    routers = select(Router.host, func.count()).where(Router.host != "")
    for query, column in ((dhcp, Port.host_id), (routers, Router.host)):
        for host, count in await session.execute(query.group_by(column)):
            out[host] = out.get(host, 0) + int(count)
    return out


async def network_node(
    session: AsyncSession,
    settings: NetworkSettings,
    kind: Literal["dhcp", "router"],
    hints: Sequence[str] = (),
) -> str:
    """The host that will run a new DHCP server or router, in a hinted zone if any."""
    nodes = list(dict.fromkeys(settings.network_nodes))
    if kind == "router" and (settings.l3_host or not nodes):
        return settings.router_host()
    if not nodes:
        return ""  # DHCP on every host that serves the network
    if hints:  # checked against the zones at create; a zone emptied since: any node
        nodes = [n for n in nodes if settings.zone_of(n) in hints] or nodes
    alive = await alive_agents(session, settings.agent_down_s)
    counts = await load(session)
    candidates = [n for n in nodes if n in alive] or nodes
    return min(candidates, key=lambda n: (counts.get(n, 0), nodes.index(n)))
