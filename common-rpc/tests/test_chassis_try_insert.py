"""``try_insert``: a unique conflict is False, on SQLite and PostgreSQL, and nothing else is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc.chassis.db import make_engine, make_sessionmaker, try_insert

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Base(DeclarativeBase):
    pass


class Shelf(Base):
    __tablename__ = "shelves"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    name: Mapped[str] = mapped_column(String(64), unique=True)
    colour: Mapped[str] = mapped_column(String(16), default="grey")


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (UniqueConstraint("shelf_id", "title"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    shelf_id: Mapped[str] = mapped_column(ForeignKey("shelves.id"))
    title: Mapped[str] = mapped_column(String(64))


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request, tmp_path, uid: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    dbname = None
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")  # foreign keys on
    else:
        dbname = f"sltest_ti_{uid}"
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        await conn.close()
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()
    if dbname:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()


async def test_a_unique_conflict_is_false_and_the_transaction_goes_on(sessions) -> None:
    async with sessions.begin() as session:
        first = Shelf(name="a")
        assert await try_insert(session, first)
        assert first.id and first.colour == "grey"  # defaults filled in on the object
        assert not await try_insert(session, Shelf(name="a"))
        assert await try_insert(session, Shelf(name="b"))  # the transaction is still usable
    async with sessions() as session:
        names = sorted(await session.scalars(select(Shelf.name)))
    assert names == ["a", "b"]


async def test_a_database_assigned_key_goes_through_a_savepoint(sessions) -> None:
    async with sessions.begin() as session:
        shelf = Shelf(name="s")
        assert await try_insert(session, shelf)
        book = Book(shelf_id=shelf.id, title="t")
        assert await try_insert(session, book)
        assert book.id is not None
        assert not await try_insert(session, Book(shelf_id=shelf.id, title="t"))
        assert await try_insert(session, Book(shelf_id=shelf.id, title="u"))


async def test_a_foreign_key_violation_is_an_error_not_a_race(sessions) -> None:
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await try_insert(session, Book(shelf_id="no-such-shelf", title="t"))
