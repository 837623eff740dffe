"""``audit``: does every host match the database, and does the database agree with itself?

Findings (``common_rpc.audit``): a server, or a volume or port detach, stuck past its
deadline; a claim without its
server or a placed server without a claim; a host's usage row that differs from the sum
of its claims; a guest on a host that no server there explains (orphan) or a server the
database places on a host that has no guest for it (missing); an agent that does not
answer (unreachable). A server moving between hosts (``domain.moves``) is explained on
both: the destination's claim is held under its migration's id, and a migration's source
keeps its copy until the migration is confirmed or reverted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from common_rpc.audit import AuditReport
from common_rpc.errors import RpcError

from ..db.models import Claim, HostUsage, InstanceActionEvent, Migration, Server
from ..wiring import Deps
from . import scheduler
from .common import transaction
from .detaching import RELEASING, UNPLUGGING

TRANSITIONAL = ("BUILD", "DELETING", "REBOOT", "HARD_REBOOT", "REBUILD", "RESIZE", "REVERT_RESIZE")
PLACED = ("ACTIVE", "SHUTOFF", "REBOOT", "HARD_REBOOT", "VERIFY_RESIZE", "SHELVED")
MOVING = ("migrating", "finished", "reverting")
DETACHING = (UNPLUGGING, RELEASING)


async def audit(deps: Deps) -> AuditReport:
    report = AuditReport(service="compute")
    now = datetime.now(UTC)
    async with transaction(deps.runtime.sessions) as session:
        rows = list(await session.scalars(select(Server)))
        claims = {c.server_id: c for c in await session.scalars(select(Claim))}
        usage = list(await session.scalars(select(HostUsage)))
        moving = list(await session.scalars(select(Migration).where(Migration.status.in_(MOVING))))
        detaches = list(
            await session.scalars(
                select(InstanceActionEvent).where(
                    InstanceActionEvent.status.in_(DETACHING),
                    InstanceActionEvent.task_deadline < now,
                )
            )
        )
    servers = {s.id: s for s in rows}
    migrations = {m.id for m in moving}
    kept = {(m.server_id, m.source_host) for m in moving if m.kind == "migration"}
    report.count("servers", len(rows))
    report.count("claims", len(claims))
    for server in rows:
        if server.status in TRANSITIONAL and server.task_deadline and server.task_deadline < now:
            report.add("stuck", "server", server.id, host=server.host, detail=server.status)
        if server.status in PLACED and server.host and server.id not in claims:
            report.add("mismatch", "claim", server.id, host=server.host, detail="no claim")
    for event in detaches:
        host = servers[event.server_id].host if event.server_id in servers else None
        report.add("stuck", "detach", event.target or event.server_id, host=host,
                   detail=f"{event.status} (server {event.server_id})")  # fmt: skip
    for claim in claims.values():
        if claim.server_id not in servers and claim.server_id not in migrations:
            report.add("orphan", "claim", claim.server_id, host=claim.host, detail="no server")
    for row in usage:
        held = [c for c in claims.values() if c.host == row.host]
        sums = (sum(c.vcpus for c in held), sum(c.ram_mb for c in held))
        if sums != (row.vcpus, row.ram_mb) or sum(c.disk_gb for c in held) != row.disk_gb:
            report.add("mismatch", "host_usage", row.host, host=row.host, detail="claims differ")
    for agent in await deps.agents.list(binary=scheduler.BINARY):
        if not agent.alive:
            continue
        try:
            state = await deps.agent(agent.host).inventory()
        except RpcError as exc:
            report.add("unreachable", "compute-agent", agent.host, host=agent.host,
                       detail=exc.message)  # fmt: skip
            continue
        domains = {d.server_id for d in state.domains}
        report.count("domains", len(domains))
        for server_id in sorted(domains):
            server = servers.get(server_id)
            if server is None or (
                server.host != agent.host and (server_id, agent.host) not in kept
            ):
                report.add("orphan", "domain", server_id, host=agent.host, detail="no server")
        for server in rows:
            if server.host == agent.host and server.status in PLACED and server.id not in domains:
                report.add("missing", "domain", server.id, host=agent.host, detail=server.status)
    return report
