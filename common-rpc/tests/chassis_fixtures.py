"""Fixtures for the chassis tests: throwaway databases, a tiny service, keys, a runtime.

Test modules star-import the fixtures (``__all__``) and import helpers by name;
``conftest.py`` belongs to the RPC and events suites.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import asyncpg
import pytest
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.identity import IdentitySigner, IdentityVerifier, generate_keypair
from common_rpc.chassis.settings import ServiceSettings

__all__ = ["any_db_url", "keypair", "pg_db_url", "signer", "verifier", "widget_migrations"]

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

SERVICE_ENV = """\
from sqlalchemy import Column, MetaData, String, Table

from common_rpc.chassis.migrations import run_env

metadata = MetaData()
Table("widgets", metadata, Column("id", String(36), primary_key=True),
      Column("name", String(255), nullable=False))
run_env(metadata)
"""

SERVICE_REVISION = """\
import sqlalchemy as sa
from alembic import op

revision = "widgets_0001"
down_revision = None
branch_labels = ("widgets",)
depends_on = None


def upgrade():
    op.create_table(
        "widgets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
    )


def downgrade():
    op.drop_table("widgets")
"""


SERVICE_TEMPLATE = '''"""${message}"""
import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''


class WidgetSettings(ServiceSettings):
    service_name: ClassVar[str] = "widgets"
    model_config = SettingsConfigDict(env_prefix="WIDGETS_")
    port: int = 18777


@asynccontextmanager
async def temp_pg_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its asyncpg URL."""
    name = f"chassis_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield PG_URL.format(name=name)
    finally:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def pg_db_url() -> AsyncIterator[str]:
    async with temp_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test runs twice: on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/data/widgets.db"
        return
    async with temp_pg_database() as url:
        yield url


@pytest.fixture
def widget_migrations(tmp_path: Path) -> Path:
    """A service migrations folder, as a service package would ship it."""
    folder = tmp_path / "widgets_svc" / "db" / "migrations"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(SERVICE_ENV)
    (folder / "script.py.mako").write_text(SERVICE_TEMPLATE)
    (folder / "versions" / "widgets_0001_initial.py").write_text(SERVICE_REVISION)
    return folder


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


@pytest.fixture
def signer(keypair: tuple[Path, Path]) -> IdentitySigner:
    return IdentitySigner.from_file(keypair[0])


@pytest.fixture
def verifier(keypair: tuple[Path, Path]) -> IdentityVerifier:
    return IdentityVerifier.from_file(keypair[1])
