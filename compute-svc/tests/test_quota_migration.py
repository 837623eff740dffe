"""The quota migration starts usage from the rows that exist (SQLite, real Alembic)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade
from compute_svc.app import MIGRATIONS
from compute_svc.db.models import QuotaUsage

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _server(project: str, vcpus: int, ram_mb: int, status: str) -> dict[str, Any]:
    return {
        "id": f"{project}-{vcpus}-{status}",
        "project_id": project,
        "user_id": "",
        "name": "s",
        "flavor_id": "f",
        "image_id": "",
        "vcpus": vcpus,
        "ram_mb": ram_mb,
        "disk_gb": 1,
        "status": status,
        "vm_state": "building",
        "power_state": 0,
        "generation": 1,
        "metadata": {},
        "requested_networks": [],
        "nics": [],
        "access_ipv4": "",
        "access_ipv6": "",
        "created_at": NOW,
        "updated_at": NOW,
    }


async def _insert_as_of_then(engine: AsyncEngine, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows written with the table as it was at that revision (reflected), not as today's
    models have it: later migrations add columns the old schema lacks."""
    async with engine.begin() as conn:
        old = await conn.run_sync(lambda sync: Table(table, MetaData(), autoload_with=sync))
        await conn.execute(insert(old), rows)


async def test_usage_starts_from_existing_servers_and_keypairs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/compute.db"
    await upgrade(url, MIGRATIONS, revision="compute_0003")
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        servers = [
            _server("p1", 1, 128, "ACTIVE"),
            _server("p1", 2, 512, "ERROR"),  # still holds its quota
            _server("p2", 4, 1024, "DELETING"),
        ]
        await _insert_as_of_then(engine, "servers", servers)
        keypair = {
            "name": "k",
            "public_key": "x",
            "fingerprint": "f",
            "key_type": "ssh",
            "created_at": NOW,
        }
        await _insert_as_of_then(
            engine,
            "keypairs",
            [
                keypair | {"user_id": "u1", "project_id": "p1"},
                keypair | {"user_id": "u2", "project_id": ""},
            ],
        )
        await upgrade(url, MIGRATIONS)
        async with sessions() as session:
            rows = await session.scalars(select(QuotaUsage))
            usage = {(r.project_id, r.resource): r.in_use for r in rows}
        assert usage == {
            ("p1", "instances"): 2,
            ("p1", "cores"): 3,
            ("p1", "ram"): 640,
            ("p1", "key_pairs"): 1,
            ("p2", "instances"): 1,
            ("p2", "cores"): 4,
            ("p2", "ram"): 1024,
        }
    finally:
        await engine.dispose()
