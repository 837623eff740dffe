"""The service catalog as rows: regions, services and endpoints managed over the API, the
catalog in tokens read from them, and the rows seeded from the settings at every start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from identity_fixtures import PUBLIC_URL, Gateway, gateway_settings
from sqlalchemy import func, select
from test_identity_admin import admin_headers, fault, ok

from api_gateway.db.models import Endpoint, Region, Service
from api_gateway.domain.bootstrap import MIGRATIONS, bootstrap
from api_gateway.domain.catalog import format_url, stable_id
from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade

V3 = "/identity/v3"


async def test_region_tree(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    seeded = ok(await http.get(f"{V3}/regions/RegionOne", headers=admin))["region"]
    assert seeded == {
        "id": "RegionOne",
        "description": "",
        "parent_region_id": None,
        "links": {"self": f"{PUBLIC_URL}/identity/v3/regions/RegionOne"},
    }
    generated = ok(await http.post(f"{V3}/regions", json={"region": {}}, headers=admin), 201)
    assert len(generated["region"]["id"]) == 32
    body = {"region": {"description": "east", "parent_region_id": "RegionOne"}}
    east = ok(await http.put(f"{V3}/regions/East", json=body, headers=admin), 201)["region"]
    assert (east["id"], east["parent_region_id"]) == ("East", "RegionOne")
    sub = {"region": {"id": "East-1", "parent_region_id": "East"}}
    ok(await http.post(f"{V3}/regions", json=sub, headers=admin), 201)
    assert "Duplicate ID" in fault(await http.post(f"{V3}/regions", json=sub, headers=admin), 409)
    orphan = {"region": {"parent_region_id": "Nowhere"}}
    fault(await http.post(f"{V3}/regions", json=orphan, headers=admin), 404)
    # East-1 under East under RegionOne: RegionOne under East-1 would be a cycle.
    cycle = {"region": {"parent_region_id": "East-1"}}
    assert "circular" in fault(
        await http.patch(f"{V3}/regions/RegionOne", json=cycle, headers=admin), 400
    )
    children = ok(
        await http.get(f"{V3}/regions", params={"parent_region_id": "East"}, headers=admin)
    )
    assert [r["id"] for r in children["regions"]] == ["East-1"]
    # Any token may read regions; only admins change them.
    member = {"X-Auth-Token": await gateway.demo_token()}
    assert ok(await http.get(f"{V3}/regions/East", headers=member))["region"]["id"] == "East"
    fault(await http.post(f"{V3}/regions", json={"region": {}}, headers=member), 403)
    # A region whose subtree has endpoints stays; without them it goes with its subtree.
    assert "associated endpoints" in fault(
        await http.delete(f"{V3}/regions/RegionOne", headers=admin), 403
    )
    ok(await http.delete(f"{V3}/regions/East", headers=admin), 204)
    fault(await http.get(f"{V3}/regions/East-1", headers=admin), 404)


async def test_service_and_endpoint_reach_the_catalog(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    body = {"service": {"type": "dns", "name": "designate", "description": "names"}}
    service = ok(await http.post(f"{V3}/services", json=body, headers=admin), 201)["service"]
    assert service == {
        "id": service["id"],
        "type": "dns",
        "name": "designate",
        "description": "names",
        "enabled": True,
        "links": {"self": f"{PUBLIC_URL}/identity/v3/services/{service['id']}"},
    }
    listed = ok(await http.get(f"{V3}/services", params={"type": "dns"}, headers=admin))
    assert [s["id"] for s in listed["services"]] == [service["id"]]
    url = "http://dns.test/v2/$(project_id)s"
    body = {
        "endpoint": {
            "service_id": service["id"],
            "interface": "public",
            "url": url,
            "region_id": "RegionDNS",  # made on the fly, as Keystone does
        }
    }
    endpoint = ok(await http.post(f"{V3}/endpoints", json=body, headers=admin), 201)["endpoint"]
    assert endpoint["region"] == endpoint["region_id"] == "RegionDNS"
    assert (endpoint["url"], endpoint["enabled"]) == (url, True)
    ok(await http.get(f"{V3}/regions/RegionDNS", headers=admin))

    demo = gateway.accounts["demo"]
    member = {"X-Auth-Token": await gateway.demo_token()}

    async def dns_urls() -> list[str]:
        catalog = ok(await http.get(f"{V3}/auth/catalog", headers=member))["catalog"]
        return [e["url"] for s in catalog if s["type"] == "dns" for e in s["endpoints"]]

    assert await dns_urls() == [f"http://dns.test/v2/{demo['project_id']}"]
    # A token's own catalog is read from the rows too.
    reply = await http.post(
        f"{V3}/auth/tokens",
        json={
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": member["X-Auth-Token"]}},
                "scope": {"project": {"id": demo["project_id"]}},
            }
        },
    )
    token_catalog = ok(reply, 201)["token"]["catalog"]
    assert "dns" in {s["type"] for s in token_catalog}
    # A disabled endpoint, then a disabled service, leaves the catalog.
    path = f"{V3}/endpoints/{endpoint['id']}"
    ok(await http.patch(path, json={"endpoint": {"enabled": False}}, headers=admin))
    assert await dns_urls() == []
    ok(await http.patch(path, json={"endpoint": {"enabled": True}}, headers=admin))
    assert len(await dns_urls()) == 1
    service_path = f"{V3}/services/{service['id']}"
    patched = ok(
        await http.patch(service_path, json={"service": {"enabled": False}}, headers=admin)
    )
    assert patched["service"]["enabled"] is False
    assert await dns_urls() == []
    # Deleting the service takes its endpoints along.
    ok(await http.delete(service_path, headers=admin), 204)
    fault(await http.get(path, headers=admin), 404)
    fault(await http.delete(service_path, headers=admin), 404)


async def test_catalog_input_and_policy(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    service = ok(
        await http.post(f"{V3}/services", json={"service": {"type": "x"}}, headers=admin), 201
    )["service"]
    assert "name" not in service  # Keystone shows no name until one is set
    base = {"service_id": service["id"], "interface": "public"}
    for bad_url in ("http://x/$(password)s", "http://x/%s", "not a url"):
        body = {"endpoint": {**base, "url": bad_url}}
        fault(await http.post(f"{V3}/endpoints", json=body, headers=admin), 400)
    body = {"endpoint": {**base, "interface": "private", "url": "http://x"}}
    fault(await http.post(f"{V3}/endpoints", json=body, headers=admin), 400)
    body = {"endpoint": {**base, "service_id": "nope", "url": "http://x"}}
    fault(await http.post(f"{V3}/endpoints", json=body, headers=admin), 404)
    fault(await http.post(f"{V3}/services", json={"service": {}}, headers=admin), 400)
    change_id = {"service": {"id": "other"}}
    fault(await http.patch(f"{V3}/services/{service['id']}", json=change_id, headers=admin), 400)
    member = {"X-Auth-Token": await gateway.demo_token()}
    fault(await http.get(f"{V3}/services", headers=member), 403)
    fault(await http.get(f"{V3}/endpoints", headers=member), 403)
    fault(await http.post(f"{V3}/services", json={"service": {"type": "y"}}, headers=member), 403)
    fault(await http.get(f"{V3}/endpoints"), 401)


def test_format_url() -> None:
    values = {"project_id": "P", "tenant_id": "P", "user_id": "U"}
    assert format_url("http://x/$(project_id)s/%(user_id)s", values) == "http://x/P/U"
    assert format_url("http://x/100%%", values) == "http://x/100%"
    assert format_url("http://x/$(project_id)s", {"user_id": "U"}) is None  # unscoped
    assert format_url("http://x/$(secret)s", values) is None


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_seeding_keeps_ids_and_is_safe_to_race(tmp_path: Path, db_url: str) -> None:
    """Replicas starting together make each seeded row once, with the ids deployments had
    before the catalog was stored (derived from region, type and interface)."""
    settings = gateway_settings(tmp_path, db_url, PUBLIC_URL)
    await upgrade(db_url, MIGRATIONS)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        await asyncio.gather(*(bootstrap(sessions, settings) for _ in range(3)))
        await bootstrap(sessions, settings)
        async with sessions() as session:
            services = (await session.scalars(select(Service))).all()
            count = await session.scalar(select(func.count()).select_from(Endpoint))
            regions = (await session.scalars(select(Region.id))).all()
            compute = await session.get(Endpoint, stable_id("RegionOne", "compute", "public"))
        types = sorted(s.type for s in services)
        assert types == sorted(
            ["identity", "compute", "image", "network", "block-storage", "volumev3"]
        )
        assert all(s.id == stable_id(s.type) for s in services)
        assert count == 3 * len(services)
        assert regions == ["RegionOne"]
        assert compute is not None and compute.url == f"{PUBLIC_URL}/compute/v2.1"
        # A new public URL in the settings moves the seeded endpoints at the next start.
        moved = settings.model_copy(update={"public_url": "http://new.test"})
        await bootstrap(sessions, moved)
        async with sessions() as session:
            compute = await session.get(Endpoint, stable_id("RegionOne", "compute", "public"))
        assert compute is not None and compute.url == "http://new.test/compute/v2.1"
        # A gateway started without volume's API (a compute and network cloud now) drops
        # the seeded block storage entries; a service an admin made stays.
        async with sessions() as session:
            session.add(Service(id="admin-made", type="volumev3", name="mine", enabled=True))
            await session.commit()
        fewer = moved.model_copy(update={"volume_urls": []})
        await bootstrap(sessions, fewer)
        async with sessions() as session:
            left = {(s.id, s.type) for s in (await session.scalars(select(Service))).all()}
            orphans = await session.scalar(
                select(func.count())
                .select_from(Endpoint)
                .where(Endpoint.service_id.in_([stable_id("volumev3"), stable_id("block-storage")]))
            )
        assert {kind for _, kind in left} == {"identity", "compute", "image", "network", "volumev3"}
        assert ("admin-made", "volumev3") in left and orphans == 0
    finally:
        await engine.dispose()
