"""The shared quota engine on real SQLite and PostgreSQL, over two tiny models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Integer, String, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc.chassis.db import transaction
from common_rpc.errors import Conflict, Invalid
from common_rpc.quotas import Quotas

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Base(DeclarativeBase):
    pass


class Usage(Base):
    __tablename__ = "usages"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    in_use: Mapped[int] = mapped_column(Integer, default=0)


class Limit(Base):
    __tablename__ = "limits"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


def over(resource: str, requested: int, in_use: int, limit: int) -> Conflict:
    return Conflict(f"{resource}: {requested} more, {in_use} of {limit}", details={"r": resource})


QUOTAS = Quotas(Usage, Limit, ("widget", "gadget"), over_limit=over, invalid=Invalid)
DEFAULTS = {"widget": 3, "gadget": -1}


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path, uid: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "sqlite":
        url, dbname = f"sqlite+aiosqlite:///{tmp_path}/quotas.db", None
    else:
        dbname = f"slquota_{uid}"
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        await conn.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()
    if dbname:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()


async def _reserve(sessions: Any, project: str, deltas: dict[str, int]) -> None:
    async with transaction(sessions) as session:
        await QUOTAS.reserve(session, project, deltas, DEFAULTS)


async def _usage(sessions: Any, project: str) -> dict[str, int]:
    async with transaction(sessions, write=False) as session:
        return await QUOTAS.usage(session, project)


async def test_reserve_up_to_the_limit_then_refuse(sessions) -> None:
    await _reserve(sessions, "p1", {"widget": 2, "gadget": 1000})  # gadget: unlimited
    await _reserve(sessions, "p1", {"widget": 1})
    with pytest.raises(Conflict) as refused:
        await _reserve(sessions, "p1", {"gadget": 5, "widget": 1})
    assert str(refused.value) == "widget: 1 more, 3 of 3" and refused.value.details == {
        "r": "widget"
    }
    # The refused transaction rolled back what it had taken of gadget too.
    assert await _usage(sessions, "p1") == {"widget": 3, "gadget": 1000}
    assert await _usage(sessions, "p2") == {"widget": 0, "gadget": 0}
    async with transaction(sessions) as session:
        await QUOTAS.release(session, "p1", {"widget": 2})
    await _reserve(sessions, "p1", {"widget": 2})
    assert (await _usage(sessions, "p1"))["widget"] == 3


async def test_record_counts_past_the_limit(sessions) -> None:
    async with transaction(sessions) as session:
        await QUOTAS.record(session, "p1", {"widget": 5})
    assert (await _usage(sessions, "p1"))["widget"] == 5
    with pytest.raises(Conflict):
        await _reserve(sessions, "p1", {"widget": 1})


async def test_admin_limits_override_defaults_and_clear(sessions) -> None:
    async with transaction(sessions) as session:
        await QUOTAS.set_limits(session, "p1", {"widget": 5, "unknown": 7})
        await QUOTAS.set_limits(session, "p2", {"gadget": 0})
    async with transaction(sessions) as session:
        assert await QUOTAS.limits(session, "p1", DEFAULTS) == {"widget": 5, "gadget": -1}
        assert await QUOTAS.projects_with_limits(session) == ["p1", "p2"]
    await _reserve(sessions, "p1", {"widget": 5})
    with pytest.raises(Conflict):
        await _reserve(sessions, "p2", {"gadget": 1})
    async with transaction(sessions) as session:
        await QUOTAS.set_limits(session, "p2", {"gadget": -1})  # updates the row
    await _reserve(sessions, "p2", {"gadget": 1})
    async with transaction(sessions) as session:
        await QUOTAS.clear_limits(session, "p1")
    async with transaction(sessions) as session:
        assert await QUOTAS.limits(session, "p1", DEFAULTS) == DEFAULTS
        assert await QUOTAS.projects_with_limits(session) == ["p2"]


@pytest.mark.parametrize("value", [-2, "5", 1.5, True, None, 2**31])
async def test_set_limits_refuses_bad_values(sessions, value: object) -> None:
    with pytest.raises(Invalid):
        async with transaction(sessions) as session:
            await QUOTAS.set_limits(session, "p1", {"gadget": 1, "widget": value})
    async with transaction(sessions) as session:
        assert await QUOTAS.projects_with_limits(session) == []  # nothing stored


async def test_unknown_resource_may_be_an_error(sessions) -> None:
    with pytest.raises(Invalid):
        async with transaction(sessions) as session:
            await QUOTAS.set_limits(session, "p1", {"bogus": 1}, unknown_is_error=True)


async def test_one_statement_per_resource_once_the_usage_row_exists(sessions) -> None:
    await _reserve(sessions, "p1", {"widget": 1})
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = sessions.kw["bind"].sync_engine
    async with transaction(sessions) as session:
        event.listen(engine, "before_cursor_execute", seen)
        try:
            await QUOTAS.reserve(session, "p1", {"widget": 1}, DEFAULTS)
            await QUOTAS.release(session, "p1", {"widget": 1})
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 2 and all(s.lstrip().upper().startswith("UPDATE") for s in statements)


async def test_parallel_reservations_never_overshoot(sessions) -> None:
    async with transaction(sessions) as session:
        await QUOTAS.set_limits(session, "p1", {"widget": 10})

    async def one() -> bool:
        try:
            await _reserve(sessions, "p1", {"widget": 1})
        except Conflict:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(25)))
    assert results.count(True) == 10
    assert (await _usage(sessions, "p1"))["widget"] == 10
