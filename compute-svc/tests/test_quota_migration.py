"""The quota migration starts usage from the rows that exist (SQLite, real Alembic)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade
from compute_svc.app import MIGRATIONS
from compute_svc.db.models import Keypair, QuotaUsage, Server


def _server(project: str, vcpus: int, ram_mb: int, status: str) -> Server:
    return Server(
        id=f"{project}-{vcpus}-{status}",
        project_id=project,
        name="s",
        flavor_id="f",
        vcpus=vcpus,
        ram_mb=ram_mb,
        disk_gb=1,
        status=status,
        meta={},
        requested_networks=[],
        nics=[],
    )


async def test_usage_starts_from_existing_servers_and_keypairs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/compute.db"
    await upgrade(url, MIGRATIONS, revision="compute_0003")
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            session.add_all(
                [
                    _server("p1", 1, 128, "ACTIVE"),
                    _server("p1", 2, 512, "ERROR"),  # still holds its quota
                    _server("p2", 4, 1024, "DELETING"),
                    Keypair(
                        user_id="u1", name="k", project_id="p1", public_key="x", fingerprint="f"
                    ),
                    Keypair(user_id="u2", name="k", project_id="", public_key="x", fingerprint="f"),
                ]
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
