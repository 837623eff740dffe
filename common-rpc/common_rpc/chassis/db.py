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
import contextlib
import functools
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import make_transient_to_detached

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
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _journal_mode_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # Safe with WAL: a power loss may drop the last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _journal_mode_wal(cursor: Any) -> None:
    """Switch the file to WAL (once per file; later connections find it so).

    The switch needs the file to itself, and while several first connections race for it
    SQLite may answer "database is locked" at once, without waiting out the busy timeout:
    such a connection tries again for as long as that timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, whichever adapter
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.02)  # in connect, before the connection is handed out


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
            # A directory that cannot be made fails at connect; run_app's check says why.
            with contextlib.suppress(OSError):
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


class _WriterQueue:
    """One SQLite writer of this process at a time, served in arrival order.

    SQLite has a single writer per file; without this, waiting writers poll the file lock
    with sleeps (the busy handler), so under a burst some starve past the busy timeout
    while others get in. The owning task may nest a transaction (it does not queue behind
    itself; SQLite's own lock then decides, as without the queue).
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self.owner:
            yield
            return
        async with self.lock:
            self.owner = task
            try:
                yield
            finally:
                self.owner = None


_WRITERS: weakref.WeakKeyDictionary[Any, _WriterQueue] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], *, write: bool = True
) -> AsyncIterator[AsyncSession]:
    """One transaction, committed on success, rolled back on any error.

    On SQLite a writer takes the write lock at once (``BEGIN IMMEDIATE``, after its turn
    in this process's writer queue): pysqlite would defer BEGIN to the first write, so a
    read-then-write (check, then insert) could race, a SAVEPOINT issued first would be the
    outermost transaction, and the late upgrade to a writer fails with "database is
    locked". ``write=False`` is for requests that only read: a plain BEGIN gives their
    statements one snapshot and no lock, so they run beside writers (WAL) and each other.
    """
    engine = sessions.kw["bind"]
    if engine is None or engine.dialect.name != "sqlite":
        async with sessions.begin() as session:
            yield session
        return
    if not write:
        async with sessions.begin() as session:
            await session.execute(text("BEGIN"))
            yield session
        return
    queue = _WRITERS.get(engine.sync_engine)
    if queue is None or queue.loop is not asyncio.get_running_loop():
        queue = _WRITERS[engine.sync_engine] = _WriterQueue()
    async with queue.turn(), sessions.begin() as session:
        await session.execute(text("BEGIN IMMEDIATE"))
        yield session


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


_INSERT_OR_NOTHING = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


@functools.cache
def _insert_or_nothing(dialect: str, target: Any) -> Any:
    """One statement per table, its values bound at execution: building
    ``insert().values()`` on every call cost more than running it (port creates)."""
    return _INSERT_OR_NOTHING[dialect](target).on_conflict_do_nothing()


async def try_insert(session: AsyncSession, row: Any) -> bool:
    """Insert ``row``; False when a unique key already holds its values.

    This is how creates race safely (reliability rule 4: the database carries the
    invariant, code only retries on conflict). On SQLite and PostgreSQL it is one
    ``INSERT ... ON CONFLICT DO NOTHING``: no savepoint, and on success the row joins the
    session as persistent with its column defaults filled in, without a read-back. A row
    whose primary key the database assigns, or another dialect, goes through a savepoint.
    Other integrity errors (a foreign key) raise: they are bugs, not races.
    """
    dialect = session.get_bind().dialect.name
    mapper = sa_inspect(row).mapper
    values: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        value = getattr(row, attr.key)
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
            setattr(row, attr.key, value)
        elif value is None and column.default is not None and column.default.is_callable:
            value = column.default.arg(None)
            setattr(row, attr.key, value)
        values[column.key] = value
    keyed = all(values.get(c.key) is not None for c in mapper.primary_key)
    if dialect not in _INSERT_OR_NOTHING or not keyed:
        try:
            async with session.begin_nested():
                session.add(row)
            return True
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise
            return False
    result = await session.execute(_insert_or_nothing(dialect, mapper.local_table), values)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    make_transient_to_detached(row)
    session.add(row)
    return True


def _unique_violation(exc: IntegrityError) -> bool:
    """A unique or primary key refused the row (SQLite's and PostgreSQL's wording/codes)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code is not None:
        return str(code) == "23505"
    text_ = str(exc.orig).lower()
    return "unique constraint" in text_ or "duplicate" in text_
