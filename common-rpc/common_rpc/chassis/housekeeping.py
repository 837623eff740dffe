"""Trims the reliability tables, which would otherwise grow for ever.

Expired idempotency keys go after their TTL; handled event ids and finished RPC
operations after ``keep`` (longer than any redelivery or client retry can arrive).

    housekeeping = Housekeeping(runtime.sessions)
    housekeeping.start()          # hourly; ServiceRuntime does this for every service
    await housekeeping.run_once() # {"idempotency_keys": 3, "processed_events": 120, ...}
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..tables import processed_events, rpc_operations
from .idempotency import DEFAULT_TTL, purge_expired
from .periodic import Periodic

log = logging.getLogger(__name__)


class Housekeeping:
    """A periodic clean-up of one service's chassis tables."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = 3600.0,
        keep: timedelta = timedelta(days=7),
        idempotency_ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.keep = keep
        self.idempotency_ttl = idempotency_ttl
        self._job = Periodic("housekeeping", self._report, interval=interval)

    async def run_once(self) -> dict[str, int]:
        cutoff = datetime.now(UTC) - self.keep
        counts = {"idempotency_keys": await purge_expired(self.sessions, ttl=self.idempotency_ttl)}
        async with self.sessions.begin() as session:
            done = await session.execute(
                delete(processed_events).where(processed_events.c.processed_at < cutoff)
            )
            ops = await session.execute(
                delete(rpc_operations).where(
                    rpc_operations.c.updated_at < cutoff,
                    rpc_operations.c.state.in_(("done", "dead")),
                )
            )
        counts["processed_events"] = int(done.rowcount or 0)
        counts["rpc_operations"] = int(ops.rowcount or 0)
        return counts

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _report(self) -> None:
        counts = await self.run_once()
        if any(counts.values()):
            log.info("housekeeping removed %s", counts)
