"""Database-backed memory for at-least-once delivery, kept in the service's own DB.

``SqlEventLog`` remembers handled event ids per consumer group (dedupe survives
restarts); ``SqlOperationLog`` counts attempts of mutating RPC operations and stores their
replies, so a retried call changes nothing and a request that keeps killing its workers
is dead-lettered.

    subscriber = EventSubscriber(broker, "compute", patterns, handler,
                                 dedupe=SqlEventLog(sessions, "compute"))
    server = RpcServer(broker, "network", deps, oplog=SqlOperationLog(sessions))
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .tables import processed_events, rpc_operations


class SqlEventLog:
    """Event ids one consumer group has processed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], consumer: str) -> None:
        self.sessions = sessions
        self.consumer = consumer

    async def seen(self, event_id: str) -> bool:
        async with self.sessions() as session:
            row = await session.execute(
                select(processed_events.c.event_id).where(
                    processed_events.c.consumer == self.consumer,
                    processed_events.c.event_id == event_id,
                )
            )
            return row.first() is not None

    async def remember(self, event_id: str) -> None:
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    processed_events.insert().values(
                        consumer=self.consumer, event_id=event_id, processed_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            pass  # a concurrent duplicate got there first: same outcome


class SqlOperationLog:
    """Attempts and replies of mutating RPC operations, by operation id.

    A running operation holds a lease that its server renews (``renew``) while the
    handler runs. Another delivery of the same operation (a caller's retry, or a copy the
    broker redelivered after a lost connection) finds it ``busy`` while the lease is
    fresh and waits for its reply instead of running it twice; only once the lease lapsed
    (the worker died) does it take the operation over, as a new attempt.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_attempts: int = 3,
        lease_s: float = 10.0,
    ) -> None:
        self.sessions = sessions
        self.max_attempts = max_attempts
        self.lease_s = lease_s

    async def begin(self, op_id: str, method: str) -> tuple[str, Any]:
        now = datetime.now(UTC)
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    rpc_operations.insert().values(
                        op_id=op_id, method=method, attempts=1, state="running", updated_at=now
                    )
                )
            return "run", None
        except IntegrityError:
            pass
        async with self.sessions.begin() as session:
            row = (
                await session.execute(
                    select(
                        rpc_operations.c.state,
                        rpc_operations.c.result,
                        rpc_operations.c.attempts,
                        rpc_operations.c.updated_at,
                    )
                    .where(rpc_operations.c.op_id == op_id)
                    .with_for_update()
                )
            ).one()
            if row.state == "done":
                return "done", row.result
            if row.state == "dead":
                return "dead", None
            held_since = row.updated_at
            if held_since.tzinfo is None:  # SQLite keeps no zone: the value is UTC
                held_since = held_since.replace(tzinfo=UTC)
            if now - held_since < timedelta(seconds=self.lease_s):
                return "busy", None
            attempts = row.attempts + 1
            state = "dead" if attempts > self.max_attempts else "running"
            await session.execute(
                update(rpc_operations)
                .where(rpc_operations.c.op_id == op_id)
                .values(attempts=attempts, state=state, updated_at=now)
            )
            return ("dead" if state == "dead" else "run"), None

    async def renew(self, op_id: str) -> None:
        """Keep the lease of a running operation (its handler is still working)."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(rpc_operations)
                .where(rpc_operations.c.op_id == op_id, rpc_operations.c.state == "running")
                .values(updated_at=datetime.now(UTC))
            )

    async def finish(self, op_id: str, reply: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(rpc_operations)
                .where(rpc_operations.c.op_id == op_id)
                .values(state="done", result=reply, updated_at=datetime.now(UTC))
            )

    async def attempts(self, op_id: str) -> int:
        async with self.sessions() as session:
            row = await session.execute(
                select(rpc_operations.c.attempts).where(rpc_operations.c.op_id == op_id)
            )
            return int(row.scalar_one_or_none() or 0)
