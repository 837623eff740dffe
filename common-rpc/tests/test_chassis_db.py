"""Engines and migrations on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from chassis_fixtures import *  # noqa: F403 (pytest finds fixtures by module name)
from chassis_fixtures import pg_admin, temp_pg_database
from sqlalchemy import inspect, text

from common_rpc.chassis.db import make_engine, make_sessionmaker, ping_db, transaction
from common_rpc.chassis.migrations import (
    CHASSIS_VERSION_LOCATION,
    CHASSIS_VERSIONS,
    alembic_config,
    upgrade,
)
from common_rpc.tables import chassis_metadata

CHASSIS_TABLES = {"outbox", "processed_events", "rpc_operations", "idempotency_keys"}


async def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def versions(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return {r[0] for r in rows}
    finally:
        await engine.dispose()


async def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a/b/x.db")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
        assert (tmp_path / "a" / "b" / "x.db").exists()
        assert await ping_db(engine)
    finally:
        await engine.dispose()


async def test_sessions_keep_objects_after_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    sessions = make_sessionmaker(engine)
    assert sessions.kw["expire_on_commit"] is False
    await engine.dispose()


async def test_sqlite_writers_take_turns_in_arrival_order(tmp_path: Path) -> None:
    """60 writers at once: all commit, in the order they asked (no busy-handler lottery)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    sessions = make_sessionmaker(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE log (seq INTEGER PRIMARY KEY, writer INT)"))

        async def write(n: int) -> None:
            async with transaction(sessions) as session:
                await asyncio.sleep(0.002)  # hold the lock across an await, like a request
                await session.execute(text("INSERT INTO log (writer) VALUES (:n)"), {"n": n})

        tasks = []
        for n in range(60):
            tasks.append(asyncio.create_task(write(n)))
            await asyncio.sleep(0)  # each task reaches the queue before the next starts
        await asyncio.gather(*tasks)
        async with transaction(sessions, write=False) as session:
            order = list(
                (await session.execute(text("SELECT writer FROM log ORDER BY seq"))).scalars()
            )
        assert order == list(range(60))
    finally:
        await engine.dispose()


async def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    sessions = make_sessionmaker(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INT)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        writing, release = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with transaction(sessions) as session:
                await session.execute(text("INSERT INTO t VALUES (2)"))
                writing.set()
                await release.wait()

        task = asyncio.create_task(writer())
        await writing.wait()
        async with asyncio.timeout(2):  # a writer's BEGIN IMMEDIATE would wait for release
            async with transaction(sessions, write=False) as session:
                seen = (await session.execute(text("SELECT count(*) FROM t"))).scalar()
        assert seen == 1  # the snapshot before the writer's commit
        release.set()
        await task
    finally:
        await engine.dispose()


async def test_ping_db(pg_db_url: str) -> None:
    engine = make_engine(pg_db_url)
    assert await ping_db(engine)
    await engine.dispose()
    bad = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", connect_timeout_s=1)
    assert not await ping_db(bad)
    await bad.dispose()


async def test_upgrade_creates_service_and_chassis_tables(
    any_db_url: str,
    widget_migrations: Path,
) -> None:
    await upgrade(any_db_url, widget_migrations)
    assert await table_names(any_db_url) >= CHASSIS_TABLES | {"widgets", "alembic_version"}
    assert await versions(any_db_url) == {"widgets_0001", "chassis_0002"}

    # Twice is a no-op: same versions, no error, data untouched.
    engine = make_engine(any_db_url)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO widgets (id, name) VALUES ('w1', 'kept')"))
    await upgrade(any_db_url, widget_migrations)
    assert await versions(any_db_url) == {"widgets_0001", "chassis_0002"}
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT name FROM widgets"))).scalar() == "kept"
    await engine.dispose()


async def test_chassis_revision_matches_tables_module(
    any_db_url: str,
    widget_migrations: Path,
) -> None:
    await upgrade(any_db_url, widget_migrations)
    engine = make_engine(any_db_url)

    def diff(conn) -> list:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, chassis_metadata) if d[0] != "remove_table"]

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await engine.dispose()


async def test_concurrent_upgrades_on_postgresql(widget_migrations: Path) -> None:
    async with temp_pg_database() as url:
        await asyncio.gather(*(upgrade(url, widget_migrations) for _ in range(4)))
        assert await versions(url) == {"widgets_0001", "chassis_0002"}


async def test_concurrent_upgrades_on_sqlite(tmp_path: Path, widget_migrations: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    await asyncio.gather(*(upgrade(url, widget_migrations) for _ in range(3)))
    assert await versions(url) == {"widgets_0001", "chassis_0002"}


def test_chassis_versions_are_packaged() -> None:
    assert (CHASSIS_VERSIONS / "chassis_0001_initial.py").exists()
    assert CHASSIS_VERSION_LOCATION.split(":")[1] == CHASSIS_VERSIONS.name


async def test_unreachable_database_is_reported(tmp_path: Path) -> None:
    async with temp_pg_database() as url:
        engine = make_engine(url)
        assert await ping_db(engine)
        name = url.rsplit("/", 1)[1]
        await pg_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await pg_admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        assert not await ping_db(engine)
        await pg_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        assert await ping_db(engine)
        await engine.dispose()


def test_command_line_path_and_new_revisions(tmp_path: Path, widget_migrations: Path) -> None:
    # No running loop and no connection handed in: what the alembic command does.
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    cfg = alembic_config(url, widget_migrations)
    command.upgrade(cfg, "heads")
    command.revision(cfg, "add gadgets", autogenerate=True, head="widgets@head", rev_id="w2")
    (new,) = (widget_migrations / "versions").glob("w2_*.py")
    assert "down_revision = 'widgets_0001'" in new.read_text()
    # Autogenerate saw the chassis tables as known: it proposes nothing for them.
    assert "outbox" not in new.read_text() and "agents" not in new.read_text()
    assert sorted(p.name for p in CHASSIS_VERSIONS.glob("*.py")) == [
        "__init__.py",
        "chassis_0001_initial.py",
        "chassis_0002_agents.py",
    ]


async def test_first_connections_to_a_new_sqlite_file_race_without_locked_errors(
    tmp_path,
) -> None:
    """Several processes' first connections switch a fresh file to WAL at once."""
    for round_ in range(30):
        url = f"sqlite+aiosqlite:///{tmp_path}/race{round_}.db"
        engines = [make_engine(url) for _ in range(4)]
        try:

            async def first_write(engine) -> None:
                async with engine.begin() as conn:
                    await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))

            await asyncio.gather(*(first_write(e) for e in engines))
            async with engines[0].connect() as conn:
                mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            assert mode == "wal"
        finally:
            for engine in engines:
                await engine.dispose()
