"""Transitional states with an owner, a deadline and a sweeper (reliability rule 3).

    class Server(TransitionalMixin, Base):          # adds status, task_owner, task_deadline
        __tablename__ = "servers"
        id: Mapped[str] = mapped_column(String(36), primary_key=True)

    async with sessions.begin() as session:        # only the worker whose swap wins goes on
        if not await transition(session, Server, sid, expected="BUILD", to="BUILD",
                                owner="compute@host1", deadline=timedelta(minutes=10)):
            raise Conflict(f"server {sid} is not building any more")

    sweeper = Sweeper(sessions, interval=30)
    sweeper.register(Server, "BUILD", to="ERROR")
    sweeper.register(Volume, "detaching", on_expire=finish_detach)   # decides, releases
    sweeper.start()              # background passes; await sweeper.stop() at shutdown
    await sweeper.sweep_once()   # one pass now (tests, the audit)

Every move is a compare-and-swap ``UPDATE ... WHERE id = :id AND status IN (:expected)``,
so two replicas (or a worker and a sweeper) never both act on one row.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import DateTime, String, func, inspect, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from .periodic import Periodic

log = logging.getLogger(__name__)

SWEEPER_EXPIRED = Counter(
    "stackling_sweeper_expired_total",
    "Rows the sweeper found past their task deadline and handled",
    ["model", "state"],
)

ExpireHook = Callable[[AsyncSession, Any], Awaitable[None]]


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite would hand it back naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give an aware one (datetime.now(UTC))")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class TransitionalMixin:
    """Columns of a row that goes through transitional states: who works on it, until when."""

    status: Mapped[str] = mapped_column(String(32), index=True)
    task_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    task_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None, index=True)


async def transition(
    session: AsyncSession,
    model: type[Any],
    id: Any,
    *,
    expected: str | Collection[str],
    to: str,
    owner: str | None = None,
    deadline: timedelta | None = None,
    **values: Any,
) -> bool:
    """Move row ``id`` from one of ``expected`` to ``to``; False when another worker won.

    ``owner`` and ``deadline`` (from now) are recorded for the new state and cleared when
    not given, so a settled row keeps no stale deadline.
    """
    states = [expected] if isinstance(expected, str) else list(expected)
    if not states:
        raise ValueError("transition needs at least one expected state")
    until = datetime.now(UTC) + deadline if deadline is not None else None
    return await _swap(
        session,
        model,
        id,
        model.status.in_(states),
        status=to,
        task_owner=owner,
        task_deadline=until,
        **values,
    )


@dataclass(frozen=True)
class _Registration:
    model: type[Any]
    state: str
    on_expire: ExpireHook | None
    to: str | None

    @property
    def label(self) -> str:
        return self.model.__name__


class Sweeper:
    """Finds rows left in a transitional state past their deadline and moves them on."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = 30.0,
        batch: int = 100,
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.batch = batch
        self._registrations: list[_Registration] = []
        self._job = Periodic("sweeper", self.sweep_once, interval=interval)

    def register(
        self,
        model: type[Any],
        state: str,
        *,
        on_expire: ExpireHook | None = None,
        to: str | None = None,
    ) -> None:
        """Sweep ``model`` rows stuck in ``state``: call ``on_expire``, then move to ``to``.

        ``on_expire(session, row)`` runs in the row's transaction and may move the row on
        itself (with ``transition``) or release what it held; ``to`` then moves it only if
        it is still in ``state`` past its deadline. Give at least one of the two.
        """
        if on_expire is None and to is None:
            raise ValueError(f"sweeping {model.__name__} {state!r} needs on_expire or to")
        if any(r.model is model and r.state == state for r in self._registrations):
            raise ValueError(f"{model.__name__} {state!r} is already registered")
        self._registrations.append(_Registration(model, state, on_expire, to))

    async def sweep_once(self) -> int:
        """One pass over every registration; returns how many rows were handled."""
        handled = 0
        for reg in self._registrations:
            handled += await self._sweep(reg)
        return handled

    async def overdue(self) -> dict[tuple[str, str], int]:
        """Rows past their deadline per registered (model, state): the audit wants none."""
        now = datetime.now(UTC)
        counts: dict[tuple[str, str], int] = {}
        async with self.sessions() as session:
            for reg in self._registrations:
                count = await session.scalar(
                    select(func.count()).select_from(reg.model).where(*_expired(reg, now))
                )
                counts[(reg.label, reg.state)] = int(count or 0)
        return counts

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _sweep(self, reg: _Registration) -> int:
        now = datetime.now(UTC)
        handled = 0
        for row_id in await self._candidates(reg, now):
            try:
                won = await self._expire(reg, row_id, now)
            except Exception:
                # Rolled back: the row stays expired and the next pass tries again.
                log.exception("sweeping %s %s (%s) failed", reg.label, row_id, reg.state)
                continue
            if won:
                handled += 1
                SWEEPER_EXPIRED.labels(reg.label, reg.state).inc()
                log.warning("%s %s was %s past its deadline: swept", reg.label, row_id, reg.state)
        return handled

    async def _candidates(self, reg: _Registration, now: datetime) -> list[Any]:
        async with self.sessions() as session:
            result = await session.execute(
                select(_primary_key(reg.model))
                .where(*_expired(reg, now))
                .order_by(reg.model.task_deadline)
                .limit(self.batch)
            )
            return list(result.scalars())

    async def _expire(self, reg: _Registration, row_id: Any, now: datetime) -> bool:
        async with self.sessions.begin() as session:
            if reg.on_expire is None:
                return await _swap(
                    session,
                    reg.model,
                    row_id,
                    *_expired(reg, now),
                    status=reg.to,
                    task_owner=None,
                    task_deadline=None,
                )
            # A write that changes nothing claims the row: a concurrent sweeper waits on it,
            # then finds it moved (or its deadline pushed back) and skips it.
            if not await _swap(session, reg.model, row_id, *_expired(reg, now), status=reg.state):
                return False
            row = await session.get(reg.model, row_id)
            await reg.on_expire(session, row)
            if reg.to is not None:
                await _swap(
                    session,
                    reg.model,
                    row_id,
                    *_expired(reg, now),
                    status=reg.to,
                    task_owner=None,
                    task_deadline=None,
                )
            return True


def _expired(reg: _Registration, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (reg.model.status == reg.state, reg.model.task_deadline < now)


def _primary_key(model: type[Any]) -> Any:
    columns = inspect(model).primary_key
    if len(columns) != 1:
        raise TypeError(f"{model.__name__} needs a single-column primary key")
    return getattr(model, inspect(model).get_property_by_column(columns[0]).key)


async def _swap(
    session: AsyncSession,
    model: type[Any],
    id: Any,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """``UPDATE model SET values WHERE pk = id AND conditions``; True when it matched the row."""
    result = await session.execute(
        update(model)
        .where(_primary_key(model) == id, *conditions)
        .values(**values)
        # "fetch" refreshes copies of the row this session holds; it never guesses them.
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1
