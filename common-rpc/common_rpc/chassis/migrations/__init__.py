"""Alembic for every service: its own history plus the chassis branch, on SQLite or PostgreSQL.

Each service keeps ``<pkg>/db/migrations/`` with ``versions/`` and a three-line ``env.py``:

    from common_rpc.chassis.migrations import run_env
    from network_svc.db.models import metadata
    run_env(metadata)

and upgrades its database at startup (idempotent; concurrent replicas wait for each other):

    await upgrade(settings.database_url, Path(network_svc.__file__).parent / "db/migrations")

The chassis tables (``common_rpc.tables``) are the ``chassis`` branch whose revisions live
in this package, so ``upgrade`` runs ``alembic upgrade heads`` over both version
directories. New service revisions go on the service's own branch:

    command.revision(alembic_config(url, script_location), "add ports",
                     autogenerate=True, head="network@head")

For the plain ``alembic`` command, an ``alembic.ini`` lists both locations:
``version_locations = %(here)s/network_svc/db/migrations/versions
common_rpc.chassis.migrations:versions`` with ``path_separator = space``.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ...tables import chassis_metadata
from ..db import is_sqlite, sqlite_path

CHASSIS_VERSIONS = Path(__file__).parent / "versions"
CHASSIS_VERSION_LOCATION = "common_rpc.chassis.migrations:versions"

# Any constant works: PostgreSQL advisory locks are per database, one lock for all upgrades.
MIGRATION_LOCK_KEY = 0x5354_4B4C


def alembic_config(db_url: str, script_location: str | Path) -> Config:
    """An Alembic config for a service's migrations folder and the chassis branch."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(script_location).resolve()))
    cfg.set_main_option("path_separator", "os")
    locations = [Path(script_location).resolve() / "versions", CHASSIS_VERSIONS]
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    # ConfigParser interpolates '%': a percent-encoded password must be escaped.
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return cfg


async def upgrade(db_url: str, script_location: str | Path, revision: str = "heads") -> None:
    """Bring the database at ``db_url`` to ``revision`` (all heads: service and chassis)."""
    cfg = alembic_config(db_url, script_location)
    # Alembic's ``context`` is a module global: two upgrades in one process must not interleave.
    async with _process_lock():
        engine = _migration_engine(db_url)
        try:
            async with engine.begin() as conn:
                await _lock(conn)
                await conn.run_sync(_command_upgrade, cfg, revision)
        finally:
            await engine.dispose()


_PROCESS_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    # One per event loop: an asyncio.Lock cannot be shared between loops.
    loop = asyncio.get_running_loop()
    lock = _PROCESS_LOCKS.get(loop)
    if lock is None:
        lock = _PROCESS_LOCKS[loop] = asyncio.Lock()
    return lock


def _command_upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def run_env(target_metadata: MetaData | Sequence[MetaData]) -> None:
    """The whole body of a service's Alembic ``env.py``."""
    from alembic import context

    metadata = [
        *([target_metadata] if isinstance(target_metadata, MetaData) else target_metadata),
        chassis_metadata,
    ]
    url = context.config.get_main_option("sqlalchemy.url") or ""
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=metadata,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            render_as_batch=is_sqlite(url),
        )
        with context.begin_transaction():
            context.run_migrations()
    elif connection is not None:
        _run_migrations(connection, metadata)
    else:
        # Started by the alembic command line: nobody else owns an event loop here.
        asyncio.run(_run_standalone(url, metadata))


def _run_migrations(connection: Connection, metadata: list[MetaData]) -> None:
    from alembic import context

    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str, metadata: list[MetaData]) -> None:
    engine = _migration_engine(url)
    try:
        async with engine.begin() as conn:
            await _lock(conn)
            await conn.run_sync(_run_migrations, metadata)
    finally:
        await engine.dispose()


async def _lock(conn: AsyncConnection) -> None:
    """Serialise concurrent upgrades (replicas starting together) until the commit."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _migration_engine(url: str) -> AsyncEngine:
    """A one-off engine whose transaction covers the DDL too, on SQLite as on PostgreSQL."""
    if not is_sqlite(url):
        return create_async_engine(url, poolclass=NullPool)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

    # The driver would commit DDL on its own; an explicit BEGIN IMMEDIATE makes the whole
    # upgrade one transaction and makes a second migrator wait for the first. No pragma
    # here: switching a fresh file to WAL beside a running migration can deadlock both.
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    return engine
