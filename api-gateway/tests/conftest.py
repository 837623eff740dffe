"""Fixtures for the gateway's tests: real SQLite and PostgreSQL databases, the machine's
RabbitMQ, and the gateway app with its identity API served in-process (httpx) or on a
real port (uvicorn in a thread, for openstacksdk).

    async def test_x(gateway): await gateway.http.get("/identity/v3")          # SQLite
    pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
    def test_y(live_gateway): openstack.connect(auth_url=live_gateway.url + "/identity/v3", ...)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from identity_fixtures import (
    PG_ADMIN_DSN,
    PUBLIC_URL,
    Gateway,
    LiveGateway,
    build_app,
    gateway_settings,
    start_live_gateway,
)

from api_gateway.domain.bootstrap import bootstrap
from common_rpc.testing import running_app


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, uid: str) -> AsyncIterator[str]:
    """A fresh database: SQLite unless a test parametrizes it with "postgresql"."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
        return
    dbname = f"sltest_gw_{uid}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    await conn.execute(f'CREATE DATABASE "{dbname}"')
    await conn.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    finally:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()


@pytest.fixture
async def gateway(db_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, db_url, PUBLIC_URL)
    app = build_app(settings)
    async with running_app(app, base_url=PUBLIC_URL) as http:
        accounts = await bootstrap(app.state.runtime.sessions, settings)
        yield Gateway(http, settings, app.state.deps.tokens, accounts)


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with start_live_gateway(tmp_path_factory.mktemp("gateway")) as gateway:
        yield gateway
