"""The scheduler's claims: concurrent boots never oversubscribe a host (SQLite and
PostgreSQL), and what does not fit ends in ERROR with Nova's "No valid host" fault."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from api_helpers import ADMIN, cloud, private_vhost

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_settings(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """No override (SQLite under data_dir), or a fresh PostgreSQL database dropped after."""
    if request.param == "sqlite":
        yield {}
        return
    name = f"sltest_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield {"db_url": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"}
    finally:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def test_ten_concurrent_boots_with_room_for_six(
    tmp_path: Path, amqp_url: str, db_settings: dict[str, str]
) -> None:
    capacity = {"vcpus": 6, "ram_mb": 4096, "disk_gb": 100}
    async with cloud(tmp_path, amqp_url, capacity=capacity, with_network=False, **db_settings) as c:
        c.agent.spawn_delay = 0.2  # boots overlap while they hold their claims
        flavor = await c.api.flavor("m1.one", ram=256, vcpus=1, disk=1)
        image = await c.api.image("p1", b"raw-disk", disk_format="raw")
        body = {
            "server": {
                "name": "many",
                "flavorRef": flavor["id"],
                "imageRef": image["id"],
                "networks": "none",
            }
        }
        responses = await asyncio.gather(
            *(c.api.post("p1", "/v2.1/servers", body) for _ in range(10))
        )
        assert [r.status_code for r in responses] == [202] * 10
        ids = [r.json()["server"]["id"] for r in responses]
        settled = [await c.wait_status("p1", sid, "ACTIVE", "ERROR") for sid in ids]

        active = [s for s in settled if s["status"] == "ACTIVE"]
        errors = [s for s in settled if s["status"] == "ERROR"]
        assert len(active) == 6 and len(errors) == 4
        for server in errors:
            assert server["fault"]["message"].startswith("No valid host was found")
        assert sorted(c.agent.spawned) == sorted(s["id"] for s in active)

        hyper = (await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
        [row] = hyper["hypervisors"]
        assert row["vcpus_used"] == 6 and row["memory_mb_used"] == 6 * 256
        assert row["running_vms"] == 6

        # Freeing one makes room for exactly one more.
        await c.api.delete("p1", f"/v2.1/servers/{active[0]['id']}")
        await c.wait_gone("p1", active[0]["id"])
        again = await c.api.post("p1", "/v2.1/servers", body)
        assert (await c.wait_status("p1", again.json()["server"]["id"], "ACTIVE", "ERROR"))[
            "status"
        ] == "ACTIVE"
        stats = (await c.api.get("admin", "/v2.1/os-hypervisors/statistics", *ADMIN)).json()
        assert stats["hypervisor_statistics"]["vcpus_used"] == 6


async def test_dead_agent_is_not_scheduled(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False, agent_down_after_s=0.5) as c:
        flavor = await c.api.flavor("m1.one", ram=256, vcpus=1, disk=1)
        image = await c.api.image("p1", b"raw-disk", disk_format="raw")
        await asyncio.sleep(1.0)  # no heartbeat since: the host is down
        services = (await c.api.get("admin", "/v2.1/os-services", *ADMIN)).json()["services"]
        assert [(s["host"], s["state"]) for s in services] == [(c.host, "down")]
        assert (await c.api.get("p1", "/v2.1/os-services")).status_code == 403
        body = {"server": {"name": "x", "flavorRef": flavor["id"], "imageRef": image["id"]}}
        sid = (await c.api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]
        server = await c.wait_status("p1", sid, "ERROR")
        assert server["fault"]["message"].startswith("No valid host was found")
