"""Async SQLAlchemy engines for a service's own database: SQLite embedded, PostgreSQL in production.

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        session.add(port)
    assert await ping_db(engine)

SQLite files run in WAL mode with foreign keys on and a busy timeout, so API replicas and
the outbox relay of one host can share a file; PostgreSQL goes through asyncpg with a
bounded pool whose connections are checked before use (``/readyz`` recovers by itself).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL (None for in-memory databases)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Safe with WAL: a power loss may drop the last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 20,
    connect_timeout_s: float = 10.0,
    application_name: str | None = None,
) -> AsyncEngine:
    """An engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs."""
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {"timeout": connect_timeout_s}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=connect_timeout_s,
        # A connection the server dropped (restart, failover) is replaced, not handed out.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: handlers build responses from them.
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping_db(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """True when the database answers ``SELECT 1`` within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        log.warning("database ping failed: %s: %s", exc.__class__.__name__, exc)
        return False
