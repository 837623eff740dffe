"""The transactional outbox: events are written with the change, and published later.

``add_event`` inserts the event into the service's ``outbox`` table inside the caller's
transaction, so the event exists exactly when the change committed. ``OutboxRelay``
publishes pending rows with publisher confirms and deletes them only once confirmed: a
broker outage delays events, it never loses them (at least once; consumers dedupe).

    async with sessions.begin() as session:
        session.add(port)
        add_event(session, "network.port.create.end", PortPayload(...))
    relay.wake()   # optional: publish now instead of at the next poll
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .broker import TRANSIENT_ERRORS
from .chassis.db import transaction
from .context import RequestContext
from .events import Event, EventPublisher, make_event
from .metrics import OUTBOX_PENDING
from .tables import outbox

log = logging.getLogger(__name__)


async def add_event(
    session: AsyncSession,
    event_type: str,
    payload: BaseModel | dict[str, Any],
    *,
    project_id: str | None = None,
    ctx: RequestContext | None = None,
) -> Event:
    """Record an event in the same transaction as the change it describes."""
    event = make_event(event_type, payload, project_id=project_id, ctx=ctx)
    row = {
        "event_id": event.id,
        "event_type": event.event_type,
        "body": event.to_bytes(),
        "created_at": datetime.now(UTC),
    }
    await session.execute(_INSERT_EVENT, row)
    return event


# Built once: every state change writes one, and building the statement cost more than
# running it (the compiled form is cached on the statement object).
_INSERT_EVENT = insert(outbox)


class OutboxRelay:
    """Drains one service's outbox to the broker; run one per process (duplicates are safe)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        *,
        batch: int = 500,
        poll_interval: float = 0.5,
        publish_timeout: float = 30.0,
        linger_s: float = 0.05,
    ) -> None:
        self.publish_timeout = publish_timeout
        # After a wake, wait this long so the events of the next few commits go in the same
        # batch: under load one drain (a read, a confirmed publish, a delete) then serves
        # many commits instead of each commit paying for its own.
        self.linger_s = linger_s
        self.sessions = sessions
        self.publisher = publisher
        self.batch = batch
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Publish pending events now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let a drain in progress finish (within ``grace_s``), then end the loop: a drain
        cancelled inside a database call leaves its connection torn down under it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(task, grace_s)
        except (TimeoutError, asyncio.CancelledError):
            pass

    async def run(self) -> None:
        backoff = self.poll_interval
        while not self._stopping:
            try:
                sent = await self.drain_once()
                backoff = self.poll_interval
                if sent >= self.batch:
                    continue  # more is waiting
            except asyncio.CancelledError:
                raise
            except (TimeoutError, *TRANSIENT_ERRORS) as exc:
                log.warning("outbox relay: broker unavailable (%s); will retry", exc)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("outbox relay failed; will retry")
                backoff = min(backoff * 2, 5.0)
            if self._stopping:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), backoff)
                await asyncio.sleep(self.linger_s)
            except TimeoutError:
                pass

    async def drain_once(self) -> int:
        """Publish one batch of pending events in order; returns how many were confirmed."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(outbox.c.seq, outbox.c.event_id, outbox.c.event_type, outbox.c.body)
                    .order_by(outbox.c.seq)
                    .limit(self.batch)
                )
            ).all()
        if not rows:
            OUTBOX_PENDING.set(0)
            return 0
        async with asyncio.timeout(self.publish_timeout):
            await self.publisher.publish_many([(r.event_type, r.event_id, r.body) for r in rows])
        # A writer like any other (SQLite: its turn in the writer queue, then the lock at
        # once), not one that polls the file lock against the API's writers.
        async with transaction(self.sessions) as session:
            # By event id, not seq: SQLite reuses a seq once the table emptied, and another
            # relay (a replica on the same database) may have published and deleted ours
            # meanwhile; a seq could then name a newer row nobody published yet.
            ids = [r.event_id for r in rows]
            await session.execute(delete(outbox).where(outbox.c.event_id.in_(ids)))
        # A short batch was everything pending when it was read; only a full one needs a count.
        OUTBOX_PENDING.set(await self.pending() if len(rows) >= self.batch else 0)
        return len(rows)

    async def pending(self) -> int:
        async with self.sessions() as session:
            return int(
                (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
            )
