"""Transitions and the sweeper on SQLite and PostgreSQL: CAS moves, deadlines, races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import String, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc.chassis.sweeper import Sweeper, TransitionalMixin, transition

Sessions = async_sessionmaker[AsyncSession]


class Base(DeclarativeBase):
    pass


class SweptServer(TransitionalMixin, Base):
    __tablename__ = "swept_servers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    port_id: Mapped[str | None] = mapped_column(String(36), default=None)


@pytest.fixture
async def db(sessions: Sessions) -> Sessions:
    async with sessions() as session:
        conn = await session.connection()
        await conn.run_sync(Base.metadata.create_all)
        await session.commit()
    return sessions


async def add(db: Sessions, sid: str, status: str, due_in: timedelta | None, **values: Any):
    deadline = datetime.now(UTC) + due_in if due_in is not None else None
    async with db.begin() as session:
        session.add(SweptServer(id=sid, status=status, task_deadline=deadline, **values))


async def statuses(db: Sessions) -> dict[str, str]:
    async with db() as session:
        rows = await session.execute(SweptServer.__table__.select())
        return {row.id: row.status for row in rows}


def expired_metric(state: str) -> float:
    value = REGISTRY.get_sample_value(
        "stackling_sweeper_expired_total", {"model": "SweptServer", "state": state}
    )
    return value or 0.0


PAST = timedelta(minutes=-5)
FUTURE = timedelta(minutes=5)


async def test_transition_is_a_compare_and_swap(db):
    await add(db, "s1", "BUILD", None)

    async with db.begin() as session:
        assert await transition(
            session,
            SweptServer,
            "s1",
            expected="BUILD",
            to="BUILD",
            owner="compute@h1",
            deadline=timedelta(minutes=10),
            port_id="p1",
        )
    async with db() as session:
        row = await session.get(SweptServer, "s1")
        assert row is not None
        assert (row.status, row.task_owner, row.port_id) == ("BUILD", "compute@h1", "p1")
        assert row.task_deadline is not None and row.task_deadline.tzinfo is not None
        assert row.task_deadline > datetime.now(UTC) + timedelta(minutes=9)

    async with db.begin() as session:
        assert await transition(
            session, SweptServer, "s1", expected=["BUILD", "REBUILD"], to="ACTIVE"
        )
        assert not await transition(session, SweptServer, "s1", expected="BUILD", to="ERROR")
        assert not await transition(session, SweptServer, "nope", expected="BUILD", to="ERROR")
    async with db() as session:
        row = await session.get(SweptServer, "s1")
        assert row is not None
        # Settled: no owner, no deadline left behind.
        assert (row.status, row.task_owner, row.task_deadline) == ("ACTIVE", None, None)


async def test_expired_rows_move_to_error_and_unexpired_stay(db):
    await add(db, "late1", "BUILD", PAST)
    await add(db, "late2", "BUILD", PAST)
    await add(db, "in-time", "BUILD", FUTURE)
    await add(db, "no-deadline", "BUILD", None)
    await add(db, "other-state", "deleting", PAST)
    sweeper = Sweeper(db, interval=60)
    sweeper.register(SweptServer, "BUILD", to="ERROR")
    before = expired_metric("BUILD")

    assert await sweeper.overdue() == {("SweptServer", "BUILD"): 2}
    assert await sweeper.sweep_once() == 2

    assert await statuses(db) == {
        "late1": "ERROR",
        "late2": "ERROR",
        "in-time": "BUILD",
        "no-deadline": "BUILD",
        "other-state": "deleting",
    }
    assert expired_metric("BUILD") == before + 2
    assert await sweeper.overdue() == {("SweptServer", "BUILD"): 0}
    assert await sweeper.sweep_once() == 0


async def test_on_expire_sees_the_row_and_decides(db):
    await add(db, "s1", "deleting", PAST, task_owner="compute@h1", port_id="port-1")
    await add(db, "s2", "deleting", PAST, task_owner="compute@h2", port_id="port-2")
    seen: list[tuple[str, str | None, str | None]] = []

    async def finish_delete(session: AsyncSession, row: SweptServer) -> None:
        seen.append((row.id, row.task_owner, row.port_id))
        if row.id == "s1":
            # Released what it held, and finished the delete itself.
            await transition(
                session, SweptServer, row.id, expected="deleting", to="DELETED", port_id=None
            )

    sweeper = Sweeper(db, interval=60)
    sweeper.register(SweptServer, "deleting", on_expire=finish_delete, to="ERROR")

    assert await sweeper.sweep_once() == 2

    assert sorted(seen) == [("s1", "compute@h1", "port-1"), ("s2", "compute@h2", "port-2")]
    assert await statuses(db) == {"s1": "DELETED", "s2": "ERROR"}


async def test_a_failing_hook_leaves_the_row_for_the_next_pass(db):
    await add(db, "s1", "BUILD", PAST)
    calls = 0

    async def flaky(session: AsyncSession, row: SweptServer) -> None:
        nonlocal calls
        calls += 1
        await transition(session, SweptServer, row.id, expected="BUILD", to="ERROR")
        if calls == 1:
            raise RuntimeError("host unreachable")

    sweeper = Sweeper(db, interval=60)
    sweeper.register(SweptServer, "BUILD", on_expire=flaky)

    assert await sweeper.sweep_once() == 0
    assert await statuses(db) == {"s1": "BUILD"}  # the hook's move was rolled back
    assert await sweeper.sweep_once() == 1
    assert await statuses(db) == {"s1": "ERROR"}


async def test_cas_loses_to_a_change_made_after_the_select(db, monkeypatch):
    await add(db, "moved", "BUILD", PAST)
    await add(db, "extended", "BUILD", PAST)
    await add(db, "still-late", "BUILD", PAST)
    sweeper = Sweeper(db, interval=60)
    sweeper.register(SweptServer, "BUILD", to="ERROR")
    select_candidates = sweeper._candidates

    async def then_other_workers_act(reg: Any, now: datetime) -> list[Any]:
        ids = await select_candidates(reg, now)
        assert sorted(ids) == ["extended", "moved", "still-late"]
        async with db.begin() as session:
            await transition(session, SweptServer, "moved", expected="BUILD", to="ACTIVE")
            await transition(
                session,
                SweptServer,
                "extended",
                expected="BUILD",
                to="BUILD",
                owner="compute@h1",
                deadline=FUTURE,
            )
        return ids

    monkeypatch.setattr(sweeper, "_candidates", then_other_workers_act)

    assert await sweeper.sweep_once() == 1
    assert await statuses(db) == {"moved": "ACTIVE", "extended": "BUILD", "still-late": "ERROR"}


async def test_two_sweepers_in_parallel_move_each_row_once(db):
    ids = [f"s{i:02d}" for i in range(20)]
    for sid in ids:
        await add(db, sid, "BUILD", PAST)
    # A second engine: the other sweeper is another process with its own connections.
    other_engine = create_async_engine(db.kw["bind"].url)
    other = async_sessionmaker(other_engine, expire_on_commit=False)
    handled: list[str] = []

    async def to_error(session: AsyncSession, row: SweptServer) -> None:
        handled.append(row.id)
        await asyncio.sleep(0.005)  # widen the window in which the other could grab it
        await transition(session, SweptServer, row.id, expected="BUILD", to="ERROR")

    sweepers = [Sweeper(db, interval=60), Sweeper(other, interval=60)]
    for s in sweepers:
        s.register(SweptServer, "BUILD", on_expire=to_error)
    try:
        results = await asyncio.gather(*(s.sweep_once() for s in sweepers))
    finally:
        await other_engine.dispose()

    assert sum(results) == 20
    assert sorted(handled) == ids
    assert set((await statuses(db)).values()) == {"ERROR"}


async def test_start_runs_passes_in_the_background(db):
    await add(db, "s1", "BUILD", PAST)
    sweeper = Sweeper(db, interval=0.05)
    sweeper.register(SweptServer, "BUILD", to="ERROR")
    sweeper.start()
    try:
        for _ in range(100):
            if (await statuses(db))["s1"] == "ERROR":
                break
            await asyncio.sleep(0.05)
        await add(db, "s2", "BUILD", PAST)  # a later expiry is caught by a later pass
        for _ in range(100):
            if (await statuses(db))["s2"] == "ERROR":
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.stop()
    assert await statuses(db) == {"s1": "ERROR", "s2": "ERROR"}


def test_register_needs_a_way_out():
    sweeper = Sweeper(async_sessionmaker(), interval=60)
    with pytest.raises(ValueError, match="on_expire or to"):
        sweeper.register(SweptServer, "BUILD")
    sweeper.register(SweptServer, "BUILD", to="ERROR")
    with pytest.raises(ValueError, match="already registered"):
        sweeper.register(SweptServer, "BUILD", to="ERROR")


async def test_naive_deadlines_are_refused(db):
    await add(db, "s1", "BUILD", None)
    with pytest.raises(Exception, match="naive datetime"):
        async with db.begin() as session:
            await session.execute(update(SweptServer).values(task_deadline=datetime.now()))
