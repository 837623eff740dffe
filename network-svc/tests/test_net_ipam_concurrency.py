"""200 concurrent port creates on one /24: no duplicate IP, exactly the free count succeed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from netapi_helpers import fault_type, network_api
from sqlalchemy import func, select

from network_svc.db.models import IpAllocation, Port, PortSecurityGroup, SecurityGroup

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
POOL = [{"start": "10.0.0.10", "end": "10.0.0.159"}]  # 150 addresses
REQUESTS = 200
FREE = 150 - 1  # the network's DHCP port holds the first address of the pool


@asynccontextmanager
async def temp_postgres() -> AsyncIterator[str]:
    name = f"stk_net_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _storm(tmp_path, **settings: object) -> None:
    async with network_api(tmp_path, **settings) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24", allocation_pools=POOL)
        [dhcp] = (await api.get("pA", "/v2.0/ports?device_owner=network:dhcp")).json()["ports"]
        dhcp_ip = dhcp["fixed_ips"][0]["ip_address"]
        body = {"port": {"network_id": net["id"]}}
        results = await asyncio.gather(
            *(api.post("pA", "/v2.0/ports", body) for _ in range(REQUESTS))
        )
        created = [r.json()["port"] for r in results if r.status_code == 201]
        refused = [r for r in results if r.status_code != 201]
        assert len(created) == FREE
        assert {r.status_code for r in refused} == {409}
        assert {fault_type(r) for r in refused} == {"IpAddressGenerationFailure"}
        ips = [p["fixed_ips"][0]["ip_address"] for p in created]
        macs = [p["mac_address"] for p in created]
        assert len(set(ips)) == FREE and len(set(macs)) == FREE
        assert dhcp_ip not in ips
        assert all(p["fixed_ips"][0]["subnet_id"] == sub["id"] for p in created)
        async with api.app.state.runtime.sessions() as session:
            count = func.count()
            assert await session.scalar(select(count).select_from(Port)) == FREE + 1
            assert await session.scalar(select(count).select_from(IpAllocation)) == FREE + 1
            assert await session.scalar(select(count).select_from(PortSecurityGroup)) == FREE
            assert await session.scalar(select(count).select_from(SecurityGroup)) == 1
        # Every address comes back with its port.
        await asyncio.gather(*(api.delete("pA", f"/v2.0/ports/{p['id']}") for p in created))
        async with api.app.state.runtime.sessions() as session:
            left = await session.scalars(select(IpAllocation.ip_address))
            assert list(left) == [dhcp_ip]


async def test_concurrent_ports_on_sqlite(tmp_path) -> None:
    await _storm(tmp_path)


async def test_concurrent_ports_on_postgresql(tmp_path) -> None:
    async with temp_postgres() as url:
        await _storm(tmp_path, db_url=url)
