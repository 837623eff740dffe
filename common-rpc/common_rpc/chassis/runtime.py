"""The plumbing one process shares: broker, database, RPC client, event publisher, outbox relay.

    runtime = ServiceRuntime(settings, migrations=NETWORK_MIGRATIONS)   # <pkg>/db/migrations
    runtime.serve("network", deps, handlers.rpc)            # RpcServer, idempotent by op id
    runtime.subscribe("network", ["compute.server.delete.end"], on_server_deleted)
    app = make_app(settings, runtime, title="network", version="2.0")   # lifespan runs start/stop

    await runtime.start()   # migrate, connect, consume, relay the outbox
    await runtime.stop()    # stop consuming, drain in-flight work, flush the outbox, close

Everything is built here once and handed to the service's composition root; nothing is
global, so a test builds its own runtime with its own database and topics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ..broker import Broker
from ..events import EventHandler, EventPublisher, EventSubscriber
from ..outbox import OutboxRelay
from ..rpc import RpcClient, RpcRouter, RpcServer
from ..sql_store import SqlEventLog, SqlOperationLog
from .db import make_engine, make_sessionmaker
from .housekeeping import Housekeeping
from .migrations import upgrade
from .periodic import Periodic
from .settings import ServiceSettings
from .sweeper import Sweeper

log = logging.getLogger(__name__)


class ServiceRuntime:
    """Shared clients of one process and the servers it runs, started and stopped together."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: str | Path | None = None,
        database: bool = True,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or f"{settings.service_name}@{settings.host}"
        self.migrations = migrations
        self.broker = Broker(settings.messaging(), name=self.name)
        self.rpc = RpcClient(self.broker)
        self.publisher = EventPublisher(self.broker)
        self.servers: list[RpcServer] = []
        self.subscribers: list[EventSubscriber] = []
        self.jobs: list[Periodic] = []
        # Agents keep no database: they serve their host and report to their service.
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self.relay: OutboxRelay | None = None
        self.sweeper: Sweeper | None = None
        self.housekeeping: Housekeeping | None = None
        if database:
            self._engine = make_engine(settings.database_url, application_name=self.name)
            self._sessions = make_sessionmaker(self._engine)
            self.relay = OutboxRelay(self._sessions, self.publisher)
            # Services register their transitional states: runtime.sweeper.register(...).
            self.sweeper = Sweeper(self._sessions, interval=30.0)
            self.housekeeping = Housekeeping(self._sessions)
        self.started = False

    @property
    def has_database(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError(f"{self.name} runs without a database")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError(f"{self.name} runs without a database")
        return self._sessions

    def serve(
        self, topic: str, deps: Any, *routers: RpcRouter, idempotent: bool = True
    ) -> RpcServer:
        """Add an RPC server for ``topic``; with a database, retried operations run once."""
        oplog = None
        if idempotent and self.has_database:
            config = self.broker.config
            oplog = SqlOperationLog(
                self.sessions,
                max_attempts=config.rpc_max_attempts,
                lease_s=config.rpc_operation_lease_s,
            )
        server = RpcServer(self.broker, topic, deps, oplog=oplog)
        for router in routers:
            server.include(router)
        self.servers.append(server)
        return server

    def add_job(self, name: str, job: Callable[[], Awaitable[Any]], *, interval: float) -> None:
        """A background job of the service, run every ``interval`` seconds while it runs."""
        self.jobs.append(Periodic(name, job, interval=interval))

    def subscribe(
        self, group: str, patterns: Iterable[str], handler: EventHandler
    ) -> EventSubscriber:
        """Add an event subscriber; with a database, its dedupe survives restarts."""
        dedupe = SqlEventLog(self.sessions, group) if self.has_database else None
        subscriber = EventSubscriber(self.broker, group, patterns, handler, dedupe=dedupe)
        self.subscribers.append(subscriber)
        return subscriber

    async def start(self) -> None:
        """Migrate the database, connect to the broker, then start taking work."""
        try:
            if self.migrations is not None and self.has_database:
                await upgrade(self.settings.database_url, self.migrations)
            # The first connection retries with backoff: the broker may start after us.
            await self.broker.connection(self.broker.config.url)
            for server in self.servers:
                await server.start()
            for subscriber in self.subscribers:
                await subscriber.start()
            if self.relay is not None:
                self.relay.start()
            if self.sweeper is not None:
                self.sweeper.start()
            if self.housekeeping is not None:
                self.housekeeping.start()
            for job in self.jobs:
                job.start()
        except BaseException:
            await self.stop()
            raise
        self.started = True
        log.info("%s started", self.name)

    async def stop(self, drain_s: float = 10.0) -> None:
        """Stop taking work, let running handlers finish, flush the outbox, close."""
        for job in self.jobs:
            await job.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.housekeeping is not None:
            await self.housekeeping.stop()
        for subscriber in reversed(self.subscribers):
            await subscriber.stop()
        for server in reversed(self.servers):
            await server.stop(drain_s)
        if self.relay is not None:
            await self.relay.stop()
            await self._flush_outbox(drain_s)
        await self.broker.close()
        if self._engine is not None:
            await self._engine.dispose()
        self.started = False
        log.info("%s stopped", self.name)

    async def _flush_outbox(self, timeout_s: float) -> None:
        # Events the drained handlers just wrote go out now rather than at the next start.
        assert self.relay is not None
        if not self.broker.is_connected():
            return
        try:
            async with asyncio.timeout(timeout_s):
                while await self.relay.drain_once():
                    pass
        except Exception as exc:
            log.warning("outbox not flushed at shutdown (kept for the next start): %s", exc)


def lifespan(runtime: ServiceRuntime) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that starts ``runtime`` before serving and stops it after."""

    @asynccontextmanager
    async def run(_app: Any) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return run
