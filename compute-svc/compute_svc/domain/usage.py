"""``os-simple-tenant-usage``: how long each project's servers ran, and at what size.

A server is billed from its creation (``created_at``) until it was deleted, or until the
end of the period; each hour counts its flavor's vCPUs, RAM and disk (Nova's
``total_vcpus_usage`` and the others are those hours times the size). Servers that still
exist are read from their rows. A deleted server's row is gone, so the ledger
(``server_usages``) keeps what each server held: compute's own server events fill it
(``register``): a create or a delete beginning records the server's size from its row, the
delete's end records when it ended (the event's time, the transaction that removed the
row). A job records every live server again now and then, so a server whose events came
before this ledger existed is billed too. A server created and deleted before any of its
events was handled is not in the ledger (the events are handled within moments).

    usages = await usage.tenant_usages(session, start, stop, project_id="p1")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc import Event

from ..db.models import Flavor, Server
from ..db.usage import ServerUsage
from ..wiring import Deps
from .common import transaction, try_insert
from .errors import invalid

GROUP = "compute-usage"
PATTERNS = (
    "compute.server.create.start",
    "compute.server.create.end",
    "compute.server.delete.start",
    "compute.server.delete.end",
)
RECORD_INTERVAL_S = 600.0
FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def register(deps: Deps) -> None:
    """Subscribe this process to compute's server events (replicas share the queue) and
    record the live servers every ``RECORD_INTERVAL_S``."""
    runtime = deps.runtime

    async def on_event(event: Event) -> None:
        async with transaction(runtime.sessions) as session:
            await apply(session, event)

    async def record_all() -> None:
        async with transaction(runtime.sessions) as session:
            await record_live(session)

    runtime.subscribe(GROUP, PATTERNS, on_event)
    runtime.add_job("usage-record", record_all, interval=RECORD_INTERVAL_S)


async def apply(session: AsyncSession, event: Event) -> None:
    server_id = str(event.payload.get("id", ""))
    if not server_id:
        return
    if event.event_type.endswith(".delete.end"):
        await end(session, server_id, event.timestamp.astimezone(UTC))
        return
    server = await session.get(Server, server_id)
    if server is not None:
        await record(session, server, await _flavor_names(session))


async def _flavor_names(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(Flavor.id, Flavor.name))
    return {str(fid): str(name) for fid, name in rows}


async def record(session: AsyncSession, server: Server, flavors: dict[str, str]) -> None:
    """The server's size in the ledger (a row already there keeps its start)."""
    values = {
        "project_id": server.project_id,
        "name": server.name,
        "flavor": flavors.get(server.flavor_id, ""),
        "vcpus": server.vcpus,
        "ram_mb": server.ram_mb,
        "disk_gb": server.disk_gb,
    }
    row = ServerUsage(server_id=server.id, started_at=server.created_at, **values)
    if not await try_insert(session, row):
        await session.execute(
            update(ServerUsage)
            .where(ServerUsage.server_id == server.id, ServerUsage.ended_at.is_(None))
            .values(**values)
        )


async def record_live(session: AsyncSession) -> None:
    flavors = await _flavor_names(session)
    for server in await session.scalars(select(Server)):
        await record(session, server, flavors)


async def end(session: AsyncSession, server_id: str, at: datetime) -> None:
    await session.execute(
        update(ServerUsage)
        .where(ServerUsage.server_id == server_id, ServerUsage.ended_at.is_(None))
        .values(ended_at=at)
    )


def parse_time(value: str | None, now: datetime) -> datetime:
    """Nova's accepted spellings of ``start``/``end`` (UTC); none given: now."""
    if not value:
        return now
    text = value.strip().removesuffix("Z")
    for fmt in FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise invalid("Invalid datetime string: Datetime is in invalid format")


def period(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The period asked for; its end is at most now (nothing is billed ahead)."""
    begin, stop = parse_time(start, now), parse_time(end, now)
    if not begin < stop:
        raise invalid("Invalid start time. The start time cannot occur after the end time.")
    return begin, min(stop, now)


def _naive(moment: datetime) -> str:
    """Nova's times here: UTC without an offset, with microseconds when it has them."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


@dataclass(frozen=True)
class Life:
    """One server as billed: its size and when it started and ended (None: still on)."""

    server_id: str
    project_id: str
    name: str
    flavor: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    started_at: datetime
    ended_at: datetime | None
    state: str


async def lives(session: AsyncSession, project_id: str | None) -> list[Life]:
    """Every server that still exists, then every deleted one the ledger holds."""
    flavors = await _flavor_names(session)
    query = select(Server)
    if project_id is not None:
        query = query.where(Server.project_id == project_id)
    out = [
        Life(s.id, s.project_id, s.name, flavors.get(s.flavor_id, ""), s.vcpus, s.ram_mb,
             s.disk_gb, s.created_at, None, s.vm_state)
        for s in await session.scalars(query)
    ]  # fmt: skip
    live = {life.server_id for life in out}
    ended = select(ServerUsage).where(ServerUsage.ended_at.is_not(None))
    if project_id is not None:
        ended = ended.where(ServerUsage.project_id == project_id)
    for row in await session.scalars(ended):
        if row.server_id not in live and row.ended_at is not None:
            out.append(
                Life(row.server_id, row.project_id, row.name, row.flavor, row.vcpus,
                     row.ram_mb, row.disk_gb, row.started_at, row.ended_at, "terminated")
            )  # fmt: skip
    return out


def hours(life: Life, begin: datetime, stop: datetime) -> float:
    start = max(life.started_at, begin)
    finish = min(life.ended_at, stop) if life.ended_at is not None else stop
    return max((finish - start).total_seconds(), 0.0) / 3600.0


async def tenant_usages(
    session: AsyncSession,
    begin: datetime,
    stop: datetime,
    *,
    project_id: str | None = None,
    detailed: bool = True,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Nova's ``tenant_usages``: per project, the servers that ran during the period."""
    now = now or datetime.now(UTC)
    summaries: dict[str, dict[str, Any]] = {}
    for life in sorted(await lives(session, project_id), key=lambda x: (x.started_at, x.server_id)):
        if life.started_at > stop or (life.ended_at is not None and life.ended_at < begin):
            continue
        spent = hours(life, begin, stop)
        summary = summaries.setdefault(
            life.project_id,
            {
                "tenant_id": life.project_id,
                **({"server_usages": []} if detailed else {}),
                "total_local_gb_usage": 0.0,
                "total_vcpus_usage": 0.0,
                "total_memory_mb_usage": 0.0,
                "total_hours": 0.0,
                "start": _naive(begin),
                "stop": _naive(stop),
            },
        )
        summary["total_local_gb_usage"] += life.disk_gb * spent
        summary["total_vcpus_usage"] += life.vcpus * spent
        summary["total_memory_mb_usage"] += life.ram_mb * spent
        summary["total_hours"] += spent
        if detailed:
            up_to = life.ended_at or now
            summary["server_usages"].append(
                {
                    "instance_id": life.server_id,
                    "name": life.name,
                    "hours": spent,
                    "flavor": life.flavor,
                    "memory_mb": life.ram_mb,
                    "local_gb": life.disk_gb,
                    "vcpus": life.vcpus,
                    "tenant_id": life.project_id,
                    "started_at": _naive(life.started_at),
                    "ended_at": _naive(life.ended_at) if life.ended_at else None,
                    "state": life.state,
                    "uptime": int(max((up_to - life.started_at).total_seconds(), 0)),
                }
            )
    return list(summaries.values())
