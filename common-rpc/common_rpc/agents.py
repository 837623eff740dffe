"""Agents' heartbeats, and the service's view of which hosts are alive.

An agent (network-agent, volume-agent, compute-agent) casts ``report_state`` to its
service's topic every few seconds; the service keeps one ``agents`` row per (binary, host)
in its own database. An agent whose last heartbeat is older than ``down_after_s`` is
down: the scheduler skips it and the admin listings show it dead.

Agent side::

    heartbeat = AgentHeartbeat(runtime.rpc, service="compute", binary="compute-agent",
                               host=settings.host, capabilities=host_capacity)
    heartbeat.start()            # first report at once, then every interval_s
    await heartbeat.stop()

Service side::

    runtime.serve("compute", deps, handlers.rpc, agents_router(runtime.sessions))
    registry = AgentRegistry(runtime.sessions, down_after_s=30)
    [a.host for a in await registry.list(binary="compute-agent") if a.alive]
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .chassis.periodic import Periodic
from .context import RequestContext, current_context, use_context
from .errors import Forbidden, NotFound
from .methods import Empty, Message, Method
from .rpc import RpcClient, RpcRouter
from .tables import agents

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0
# Three missed heartbeats: one lost message or a slow host does not mark it down.
DOWN_AFTER_S = 3 * HEARTBEAT_INTERVAL_S


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AgentView:
    """One agent as the admin listings and the scheduler see it."""

    id: str
    binary: str
    host: str
    topic: str
    started_at: datetime
    last_heartbeat: datetime
    capabilities: dict[str, Any]
    admin_state_up: bool
    alive: bool


class Heartbeat(Message):
    """What an agent reports about itself every few seconds."""

    binary: str
    host: str
    topic: str
    started_at: datetime
    # Free-form by design: each agent reports what its own host offers (capacity, the
    # iSCSI initiator, tunnel endpoints), shown to admins as Neutron's ``configurations``.
    capabilities: dict[str, Any] = {}


REPORT_STATE = Method("report_state", Heartbeat, Empty, cast=True)


class AgentHeartbeat:
    """Reports this agent to its service now and every ``interval_s`` until stopped."""

    def __init__(
        self,
        rpc: RpcClient,
        *,
        service: str,
        binary: str,
        host: str,
        topic: str | None = None,
        capabilities: Callable[[], dict[str, Any]] | None = None,
        interval_s: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.rpc = rpc
        self.service = service
        self.binary = binary
        self.host = host
        self.topic = topic or f"{service}.{host}"
        self.capabilities = capabilities or dict
        self.started_at = _now()
        self._job = Periodic(f"{binary}-heartbeat", self.report, interval=interval_s)

    async def report(self) -> None:
        # The service's own agents speak as the service (admin), like its other RPC calls.
        agent = RequestContext(user_id=self.binary, roles=frozenset({"admin", "service"}))
        beat = Heartbeat(
            binary=self.binary,
            host=self.host,
            topic=self.topic,
            started_at=self.started_at,
            capabilities=self.capabilities(),
        )
        with use_context(agent):
            await self.rpc.send(self.service, REPORT_STATE, beat, timeout=5.0)

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()


async def record_heartbeat(
    session: AsyncSession,
    *,
    binary: str,
    host: str,
    topic: str,
    started_at: datetime,
    capabilities: dict[str, Any],
) -> None:
    """Upsert the (binary, host) row; portable across SQLite and PostgreSQL."""
    values = {
        "topic": topic,
        "started_at": started_at,
        "last_heartbeat": _now(),
        "capabilities": capabilities,
    }
    where = (agents.c.binary == binary) & (agents.c.host == host)
    result = await session.execute(update(agents).where(where).values(**values))
    if result.rowcount:  # type: ignore[attr-defined]
        return
    try:
        async with session.begin_nested():
            await session.execute(
                insert(agents).values(
                    binary=binary, host=host, id=str(uuid.uuid4()), admin_state_up=True, **values
                )
            )
    except IntegrityError:
        # A replica inserted it between our update and insert: update what it wrote.
        await session.execute(update(agents).where(where).values(**values))


def agents_router(sessions: async_sessionmaker[AsyncSession]) -> RpcRouter:
    """The ``report_state`` handler a service adds to its topic's server."""
    router = RpcRouter()

    @router.implement(REPORT_STATE)
    async def report_state(deps: Any, beat: Heartbeat) -> None:
        if not current_context().is_admin:
            raise Forbidden("report_state is for the service's own agents")
        async with sessions() as session, session.begin():
            await record_heartbeat(
                session,
                binary=beat.binary,
                host=beat.host,
                topic=beat.topic,
                started_at=_aware(beat.started_at),
                capabilities=beat.capabilities,
            )

    return router


class AgentRegistry:
    """Reads the ``agents`` table: who is there, who is alive, what they offer."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, down_after_s: float = DOWN_AFTER_S
    ) -> None:
        self.sessions = sessions
        self.down_after = timedelta(seconds=down_after_s)

    def _view(self, row: Any, now: datetime) -> AgentView:
        last = _aware(row.last_heartbeat)
        return AgentView(
            id=row.id,
            binary=row.binary,
            host=row.host,
            topic=row.topic,
            started_at=_aware(row.started_at),
            last_heartbeat=last,
            capabilities=dict(row.capabilities or {}),
            admin_state_up=bool(row.admin_state_up),
            alive=now - last <= self.down_after,
        )

    async def list(self, *, binary: str | None = None) -> list[AgentView]:
        query = select(agents).order_by(agents.c.binary, agents.c.host)
        if binary is not None:
            query = query.where(agents.c.binary == binary)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        now = _now()
        return [self._view(row, now) for row in rows]

    async def get(self, agent_id: str) -> AgentView:
        async with self.sessions() as session:
            row = (await session.execute(select(agents).where(agents.c.id == agent_id))).first()
        if row is None:
            raise NotFound(f"Agent {agent_id} could not be found.")
        return self._view(row, _now())

    async def alive_hosts(self, binary: str) -> list[str]:
        return [a.host for a in await self.list(binary=binary) if a.alive and a.admin_state_up]

    async def set_admin_state(self, agent_id: str, admin_state_up: bool) -> AgentView:
        """Operators take a host out of scheduling without stopping its agent."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(agents).where(agents.c.id == agent_id).values(admin_state_up=admin_state_up)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"Agent {agent_id} could not be found.")
        return await self.get(agent_id)

    async def delete(self, agent_id: str) -> None:
        """Forget a retired host's agent (it comes back if it reports again)."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(agents.delete().where(agents.c.id == agent_id))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"Agent {agent_id} could not be found.")
