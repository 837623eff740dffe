"""The scheduler's claims: concurrent boots never oversubscribe a host (SQLite and
PostgreSQL), and what does not fit ends in ERROR with Nova's "No valid host" fault.

The claims honour the allocation ratios (Nova's defaults: CPU 4.0, RAM 1.0, disk 1.0):
the unit tests claim directly in a migrated database, the API tests boot through
compute-api with a fake agent, and the hypervisor views show what the host has, not
multiplied, beside what the claims hold.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from api_helpers import ADMIN, cloud, private_vhost
from sqlalchemy import select

from common_rpc.chassis.db import make_engine, make_sessionmaker, transaction
from common_rpc.chassis.migrations import upgrade
from compute_svc.app import MIGRATIONS
from compute_svc.db.models import Claim, HostUsage
from compute_svc.domain import scheduler
from compute_svc.domain.scheduler import Capacity, Need, Ratios
from compute_svc.settings import ComputeSettings

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


# ---------------------------------------------------------------- claims in the database


@pytest.fixture
async def sessions(tmp_path: Path, db_settings: dict[str, str]) -> AsyncIterator[Any]:
    """Sessions on compute's migrated schema (SQLite file or the fresh PostgreSQL one)."""
    url = db_settings.get("db_url") or f"sqlite+aiosqlite:///{tmp_path}/compute.db"
    await upgrade(url, MIGRATIONS)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _claim(sessions: Any, server_id: str, need: Need, hosts: list[Capacity]) -> str | None:
    async with transaction(sessions) as session:
        return await scheduler.claim(session, server_id, need, hosts)


async def _used(sessions: Any, host: str) -> tuple[int, int, int]:
    async with transaction(sessions, write=False) as session:
        row = await session.get(HostUsage, host)
        return (row.vcpus, row.ram_mb, row.disk_gb) if row else (0, 0, 0)


def test_settings_default_to_novas_ratios_and_refuse_zero(tmp_path: Path) -> None:
    settings = ComputeSettings(data_dir=tmp_path)
    assert Ratios.of(settings) == Ratios(cpu=4.0, ram=1.0, disk=1.0)
    assert Ratios.of(ComputeSettings(data_dir=tmp_path, cpu_allocation_ratio=16)).cpu == 16.0
    for key in ("cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio"):
        with pytest.raises(ValueError, match=key):  # pydantic's error, or the chassis' own
            ComputeSettings(data_dir=tmp_path, **{key: 0})


def test_limit_is_the_size_times_the_ratio_rounded_down_in_decimal() -> None:
    cap = Capacity("h", 100, 1000, 10, Ratios(cpu=0.29, ram=1.5, disk=0.55))
    # 100 * 0.29 is 28.999999999999996 in binary floating point.
    assert cap.limit == Need(29, 1500, 5)
    assert Capacity("h", 2, 2048, 20).limit == Need(8, 2048, 20)


async def test_cpu_is_overcommitted_by_its_ratio(sessions: Any) -> None:
    """A 2-core host takes eight 1-vCPU servers at Nova's default 4.0, not a ninth; a
    release makes room for exactly one."""
    host = [Capacity("cn1", 2, 8192, 100, Ratios())]
    one = Need(1, 256, 1)
    placed = [await _claim(sessions, f"s{i}", one, host) for i in range(9)]
    assert placed == ["cn1"] * 8 + [None]
    assert await _used(sessions, "cn1") == (8, 8 * 256, 8)

    async with transaction(sessions) as session:
        assert await scheduler.release(session, "s0")
    assert await _claim(sessions, "s9", one, host) == "cn1"
    assert await _claim(sessions, "s10", one, host) is None
    async with transaction(sessions, write=False) as session:
        held = list(await session.scalars(select(Claim.server_id)))
    assert sorted(held) == [*(f"s{i}" for i in range(1, 8)), "s9"]  # s8 found no room


async def test_ram_and_disk_ratios_bound_their_claims(sessions: Any) -> None:
    host = [Capacity("cn1", 4, 1000, 10, Ratios(cpu=16.0, ram=1.5, disk=0.5))]
    # RAM: 1.5 x 1000 MB = 1500: two of 512 MB fit, a third (1536) does not.
    assert await _claim(sessions, "r1", Need(1, 512, 0), host) == "cn1"
    assert await _claim(sessions, "r2", Need(1, 512, 0), host) == "cn1"
    assert await _claim(sessions, "r3", Need(1, 512, 0), host) is None
    # Disk: 0.5 x 10 GB = 5 (a ratio below 1 keeps room for the host).
    assert await _claim(sessions, "d1", Need(1, 1, 6), host) is None
    assert await _claim(sessions, "d2", Need(1, 1, 5), host) == "cn1"
    assert await _used(sessions, "cn1") == (3, 1025, 5)


async def test_one_server_is_never_larger_than_the_host(sessions: Any) -> None:
    """Placement's max_unit: a ratio lets many servers share a core, never one server have
    more cores (or RAM, or disk) than the host."""
    host = [Capacity("cn1", 2, 1024, 10, Ratios(cpu=4.0, ram=2.0, disk=2.0))]
    assert await _claim(sessions, "big-cpu", Need(3, 256, 1), host) is None
    assert await _claim(sessions, "big-ram", Need(1, 1025, 1), host) is None
    assert await _claim(sessions, "big-disk", Need(1, 256, 11), host) is None
    assert await _used(sessions, "cn1") == (0, 0, 0)
    assert await _claim(sessions, "fits", Need(2, 1024, 10), host) == "cn1"


async def test_concurrent_claims_stop_at_the_overcommitted_limit(sessions: Any) -> None:
    """Twenty claims at once on a 2-core host at ratio 4.0: exactly eight get in."""
    host = [Capacity("cn1", 2, 65536, 1000, Ratios())]
    placed = await asyncio.gather(
        *(_claim(sessions, f"c{i}", Need(1, 64, 1), host) for i in range(20))
    )
    assert placed.count("cn1") == 8 and placed.count(None) == 12
    assert await _used(sessions, "cn1") == (8, 8 * 64, 8)


# ---------------------------------------------------------------- through the API


async def test_ten_concurrent_boots_with_room_for_six(
    tmp_path: Path, amqp_url: str, db_settings: dict[str, str]
) -> None:
    """Three cores at a CPU ratio of 2.0 are room for six 1-vCPU servers (RAM is not what
    runs out): six become ACTIVE, four end in "No valid host"."""
    capacity = {"vcpus": 3, "ram_mb": 4096, "disk_gb": 100}
    settings = db_settings | {"cpu_allocation_ratio": 2.0}
    async with cloud(tmp_path, amqp_url, capacity=capacity, with_network=False, **settings) as c:
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
        assert (row["vcpus"], row["vcpus_used"]) == (3, 6)  # physical, as Nova shows it
        assert row["memory_mb_used"] == 6 * 256 and row["running_vms"] == 6

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


async def test_more_servers_than_cores_all_become_active(tmp_path: Path, amqp_url: str) -> None:
    """Nova's default CPU ratio (4.0): a 2-core host runs eight tiny servers, and the
    hypervisor views and statistics show 2 vCPUs with 8 used; the ninth finds no host."""
    capacity = {"vcpus": 2, "ram_mb": 8192, "disk_gb": 100}
    async with cloud(tmp_path, amqp_url, capacity=capacity, with_network=False) as c:
        flavor = await c.api.flavor("m1.tiny", ram=256, vcpus=1, disk=1)
        image = await c.api.image("p1", b"raw-disk", disk_format="raw")
        body = {
            "server": {
                "name": "tiny",
                "flavorRef": flavor["id"],
                "imageRef": image["id"],
                "networks": "none",
            }
        }
        responses = await asyncio.gather(
            *(c.api.post("p1", "/v2.1/servers", body) for _ in range(8))
        )
        assert [r.status_code for r in responses] == [202] * 8
        ids = [r.json()["server"]["id"] for r in responses]
        settled = [await c.wait_status("p1", sid, "ACTIVE", "ERROR") for sid in ids]
        assert [s["status"] for s in settled] == ["ACTIVE"] * 8, [s.get("fault") for s in settled]
        assert sorted(c.agent.spawned) == sorted(ids)

        [row] = (await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()[
            "hypervisors"
        ]
        assert (row["vcpus"], row["vcpus_used"], row["running_vms"]) == (2, 8, 8)
        assert (row["memory_mb"], row["memory_mb_used"]) == (8192, 8 * 256)
        assert (row["local_gb"], row["local_gb_used"]) == (100, 8)
        shown = (await c.api.get("admin", f"/v2.1/os-hypervisors/{row['id']}", *ADMIN)).json()
        assert shown["hypervisor"] == row
        stats = (await c.api.get("admin", "/v2.1/os-hypervisors/statistics", *ADMIN)).json()
        assert {
            k: stats["hypervisor_statistics"][k]
            for k in ("count", "vcpus", "vcpus_used", "memory_mb_used", "running_vms")
        } == {"count": 1, "vcpus": 2, "vcpus_used": 8, "memory_mb_used": 8 * 256, "running_vms": 8}

        ninth = await c.api.post("p1", "/v2.1/servers", body)
        server = await c.wait_status("p1", ninth.json()["server"]["id"], "ACTIVE", "ERROR")
        assert server["status"] == "ERROR"
        assert server["fault"]["message"].startswith("No valid host was found")
