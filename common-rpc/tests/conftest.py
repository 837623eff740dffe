"""Fixtures for common-rpc's tests: real RabbitMQ (the machine's and a private node),
real SQLite and PostgreSQL databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from common_rpc import Broker, MessagingConfig
from common_rpc.tables import chassis_metadata
from common_rpc.testing import RabbitNode

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def rabbit_node() -> Iterator[RabbitNode]:
    """A RabbitMQ node of our own, which tests may stop and start."""
    node = RabbitNode.start_new()
    try:
        yield node
    finally:
        node.destroy()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(MessagingConfig(), name="test")
    yield b
    await b.close()


@pytest.fixture
async def node_broker(rabbit_node: RabbitNode) -> AsyncIterator[Broker]:
    """A broker client on the private node, with fast heartbeats for outage tests."""
    b = Broker(MessagingConfig(url=rabbit_node.url, heartbeat_s=2), name="test-node")
    yield b
    await b.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path, uid: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database holding the chassis tables (SQLite file or PostgreSQL)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/test.db"
        dbname = None
    else:
        dbname = f"sltest_{uid}"
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        await conn.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(chassis_metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()
    if dbname:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()
