"""The identity schema: the migration matches the models, and seeds the three roles."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from api_gateway.db.models import Base, Role
from api_gateway.domain.bootstrap import MIGRATIONS
from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade
from common_rpc.tables import chassis_metadata

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def _differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, [Base.metadata, chassis_metadata])


async def test_migration_matches_models_and_seeds_roles(db_url: str) -> None:
    await upgrade(db_url, MIGRATIONS)
    await upgrade(db_url, MIGRATIONS)  # a second run changes nothing
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_differences)
        assert diff == []
        async with make_sessionmaker(engine)() as session:
            roles = (await session.scalars(select(Role.name).order_by(Role.name))).all()
        assert roles == ["admin", "member", "reader"]
    finally:
        await engine.dispose()
