"""Quotas: OverQuota refuses a create whole, admins set limits, usage always equals rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from netapi_helpers import Api, fault_type, network_api
from sqlalchemy import func, select
from test_net_ipam_concurrency import temp_postgres

from common_rpc import Event, RequestContext, RpcClient, use_context
from common_rpc.errors import Conflict
from common_rpc.testing import wait_for
from network_svc.db.models import (
    FloatingIp,
    IpAllocation,
    Network,
    Port,
    QuotaUsage,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

OVER_PORT = {
    "NeutronError": {
        "type": "OverQuota",
        "message": "Quota exceeded for resources: ['port'].",
        "detail": "",
    }
}
COUNTED = {
    "network": Network,
    "subnet": Subnet,
    "port": Port,
    "router": Router,
    "floatingip": FloatingIp,
    "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
}


@pytest.fixture(name="db", params=["sqlite", "postgresql"])
async def db_fixture(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"default_network_type": "local"}
        return
    async with temp_postgres() as url:
        yield {"default_network_type": "local", "db_url": url}


async def _rows(api: Api, model: Any) -> int:
    async with api.app.state.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _usage_and_rows(api: Api) -> tuple[dict[tuple[str, str], int], dict[Any, int]]:
    """Usage as stored (zeros left out) and the rows counted per (project, resource)."""
    async with api.app.state.runtime.sessions() as session:
        usage = {
            (row.project_id, row.resource): row.in_use
            for row in await session.scalars(select(QuotaUsage))
            if row.in_use
        }
        rows: dict[tuple[str, str], int] = {}
        for resource, model in COUNTED.items():
            query = select(model.project_id, func.count()).group_by(model.project_id)
            for project, count in await session.execute(query):
                if project:  # a gateway's or floating IP's port belongs to no project
                    rows[(project, resource)] = count
    return usage, rows


async def _assert_usage_is_rows(api: Api) -> None:
    usage, rows = await _usage_and_rows(api)
    assert usage == rows


async def test_ports_over_quota_create_nothing(tmp_path) -> None:
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    async with network_api(tmp_path, default_network_type="local") as api:
        subscriber = api.app.state.runtime.subscribe(
            f"quotatest{uuid.uuid4().hex[:8]}", ["network.port.#"], record
        )
        await subscriber.start()
        net = await api.network("pA")
        await api.subnet("pA", net["id"], "10.0.0.0/24", enable_dhcp=False)
        member = await api.put("pA", "/v2.0/quotas/pA", {"quota": {"port": 1}})
        assert member.status_code == 403
        limited = await api.put("pA", "/v2.0/quotas/pA", {"quota": {"port": 1}}, "admin")
        assert limited.status_code == 200 and limited.json()["quota"]["port"] == 1
        first = await api.port("pA", net["id"])
        refused = await api.post("pA", "/v2.0/ports", {"port": {"network_id": net["id"]}})
        assert refused.status_code == 409 and refused.json() == OVER_PORT
        # Compute's ports count the same.
        client = RpcClient(api.app.state.runtime.broker)
        with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
            with pytest.raises(Conflict, match=r"Quota exceeded for resources: \['port'\]"):
                await client.call(
                    api.topic, "create_port", network_id=net["id"], device_id="vm1", timeout=10
                )
        assert await _rows(api, Port) == 1 and await _rows(api, IpAllocation) == 1
        raised = await api.put("pA", "/v2.0/quotas/pA", {"quota": {"port": 2}}, "admin")
        assert raised.json()["quota"]["port"] == 2
        second = await api.port("pA", net["id"])
        details = (await api.get("pA", "/v2.0/quotas/pA/details")).json()["quota"]
        assert details["port"] == {"limit": 2, "used": 2, "reserved": 0}
        assert details["network"] == {"limit": 100, "used": 1, "reserved": 0}

        async def both_created() -> bool:
            return {first["id"], second["id"]} <= {e.payload["id"] for e in seen}

        await wait_for(both_created, timeout=10)
        created = [e for e in seen if e.event_type == "network.port.create.end"]
        assert sorted(e.payload["id"] for e in created) == sorted([first["id"], second["id"]])
        await _assert_usage_is_rows(api)


async def test_quota_api_scope_and_validation(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        own = (await api.get("pA", "/v2.0/quotas/pA")).json()["quota"]
        assert own == {
            "network": 100,
            "subnet": 100,
            "port": 500,
            "router": 10,
            "floatingip": 50,
            "security_group": 10,
            "security_group_rule": 100,
        }
        assert (await api.get("pA", "/v2.0/quotas/pA/default")).json()["quota"] == own
        for path in ("/v2.0/quotas/pB", "/v2.0/quotas/pB/details", "/v2.0/quotas/pB/default"):
            assert (await api.get("pA", path)).status_code == 404
        assert (await api.get("pA", "/v2.0/quotas")).status_code == 403
        assert (await api.get("x", "/v2.0/quotas", "admin")).json() == {"quotas": []}
        for bad in ({"port": -2}, {"port": "10"}, {"port": True}, {"bogus": 1}, {"port": 2**40}):
            resp = await api.put("x", "/v2.0/quotas/pB", {"quota": bad}, "admin")
            assert resp.status_code == 400, bad
        assert (await api.put("x", "/v2.0/quotas/pB", {"port": 5}, "admin")).status_code == 400
        set_b = await api.put("x", "/v2.0/quotas/pB", {"quota": {"network": 1}}, "admin")
        assert set_b.json()["quota"]["network"] == 1
        listed = (await api.get("x", "/v2.0/quotas", "admin")).json()["quotas"]
        assert listed == [own | {"network": 1, "project_id": "pB", "tenant_id": "pB"}]
        await api.network("pB")
        over = await api.post("pB", "/v2.0/networks", {"network": {"name": "n2"}})
        assert over.status_code == 409 and fault_type(over) == "OverQuota"
        assert "['network']" in over.json()["NeutronError"]["message"]
        assert (await api.get("pB", "/v2.0/quotas/pB")).json()["quota"]["network"] == 1
        assert (await api.delete("pB", "/v2.0/quotas/pB")).status_code == 403
        assert (await api.delete("x", "/v2.0/quotas/pB", "admin")).status_code == 204
        assert (await api.get("pB", "/v2.0/quotas/pB")).json()["quota"] == own
        await api.network("pB")
        aliases = {
            e["alias"] for e in (await api.get("pA", "/v2.0/extensions")).json()["extensions"]
        }
        assert {"quotas", "quota_details"} <= aliases


async def test_usage_equals_rows_after_mixed_creates_and_deletes(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        ext = (
            await api.post(
                "admin",
                "/v2.0/networks",
                {"network": {"name": "pub", "router:external": True}},
                "admin",
            )
        ).json()["network"]
        await api.subnet("admin", ext["id"], "203.0.113.0/28", enable_dhcp=False)
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")  # with its DHCP port
        sub2 = await api.subnet("pA", net["id"], "10.0.1.0/24", enable_dhcp=False)
        other = await api.network("pA")
        await api.subnet("pA", other["id"], "10.1.0.0/24")
        vm = await api.port("pA", net["id"])
        spare = await api.port("pA", net["id"], fixed_ips=[{"subnet_id": sub2["id"]}])
        client = RpcClient(api.app.state.runtime.broker)
        with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
            for device in ("vm1", "vm1", "vm2"):
                await client.call(api.topic, "create_port", network_id=net["id"], device_id=device)
        group = (
            await api.post("pA", "/v2.0/security-groups", {"security_group": {"name": "web"}})
        ).json()["security_group"]
        rule = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp"}
        for port in (22, 80):
            body = {"security_group_rule": rule | {"port_range_min": port, "port_range_max": port}}
            assert (await api.post("pA", "/v2.0/security-group-rules", body)).status_code == 201
        router_body = {"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}}
        router = (await api.post("pA", "/v2.0/routers", router_body)).json()["router"]
        add = f"/v2.0/routers/{router['id']}/add_router_interface"
        assert (await api.put("pA", add, {"subnet_id": sub["id"]})).status_code == 200
        assert (await api.put("pA", add, {"port_id": spare["id"]})).status_code == 200
        fips = []
        for _ in range(2):
            body = {"floatingip": {"floating_network_id": ext["id"], "port_id": vm["id"]}}
            resp = await api.post("pA", "/v2.0/floatingips", {"floatingip": body["floatingip"]})
            assert resp.status_code in (201, 409), resp.text  # one fixed IP takes one FIP
            if resp.status_code == 201:
                fips.append(resp.json()["floatingip"])
        bare = {"floatingip": {"floating_network_id": ext["id"]}}
        fips.append((await api.post("pA", "/v2.0/floatingips", bare)).json()["floatingip"])
        await api.network("pB")
        await api.get("pB", "/v2.0/security-groups")  # pB's default group and its rules
        await _assert_usage_is_rows(api)
        usage, _ = await _usage_and_rows(api)
        # Two DHCP ports, the interface from the subnet, vm, spare and compute's three.
        assert usage[("pA", "port")] == 8 and usage[("pA", "security_group_rule")] == 4 + 2 + 2
        details = (await api.get("pA", "/v2.0/quotas/pA/details")).json()["quota"]
        assert {r: d["used"] for r, d in details.items()} == {
            "network": 2,
            "subnet": 3,
            "port": 8,
            "router": 1,
            "floatingip": len(fips),
            "security_group": 2,
            "security_group_rule": 8,
        }

        # Now take much of it away, side effects included.
        for fip in fips:
            assert (await api.delete("pA", f"/v2.0/floatingips/{fip['id']}")).status_code == 204
        remove = f"/v2.0/routers/{router['id']}/remove_router_interface"
        assert (await api.put("pA", remove, {"subnet_id": sub["id"]})).status_code == 200
        assert (await api.put("pA", remove, {"port_id": spare["id"]})).status_code == 200
        assert (await api.delete("pA", f"/v2.0/routers/{router['id']}")).status_code == 204
        with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
            await client.call(api.topic, "delete_ports", device_id="vm1")
        assert (await api.delete("pA", f"/v2.0/security-groups/{group['id']}")).status_code == 204
        assert (await api.delete("pA", f"/v2.0/networks/{other['id']}")).status_code == 204
        # The interface given by port went with its removal, so the subnet is free.
        assert (await api.get("pA", f"/v2.0/ports/{spare['id']}")).status_code == 404
        assert (await api.delete("pA", f"/v2.0/subnets/{sub2['id']}")).status_code == 204
        await _assert_usage_is_rows(api)
        details = (await api.get("pA", "/v2.0/quotas/pA/details")).json()["quota"]
        assert {r: d["used"] for r, d in details.items()} == {
            "network": 1,
            "subnet": 1,
            "port": 3,  # the DHCP port, vm and compute's vm2
            "router": 0,
            "floatingip": 0,
            "security_group": 1,
            "security_group_rule": 4,
        }


async def test_parallel_requests_never_overshoot_or_drift(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        net = await api.network("pA")
        await api.subnet("pA", net["id"], "10.0.0.0/24", enable_dhcp=False)
        doomed = await api.network("pA")
        await api.subnet("pA", doomed["id"], "10.9.0.0/24")
        others = [await api.network("pA") for _ in range(3)]
        await api.put("x", "/v2.0/quotas/pA", {"quota": {"port": 11}}, "admin")  # + DHCP
        body = {"port": {"network_id": net["id"]}}
        storm = await asyncio.gather(*(api.post("pA", "/v2.0/ports", body) for _ in range(20)))
        created = [r.json()["port"] for r in storm if r.status_code == 201]
        refused = [r for r in storm if r.status_code != 201]
        assert len(created) == 10 and {r.json()["NeutronError"]["type"] for r in refused} == {
            "OverQuota"
        }
        # Deletes, side-effect ports and a network's delete, all at once.
        results = await asyncio.gather(
            *(api.delete("pA", f"/v2.0/ports/{p['id']}") for p in created[:5]),
            *(
                api.post(
                    "pA",
                    "/v2.0/subnets",
                    {"subnet": {"network_id": n["id"], "cidr": f"10.{i + 1}.0.0/24"}},
                )
                for i, n in enumerate(others)
            ),
            api.delete("pA", f"/v2.0/networks/{doomed['id']}"),
            *(api.post("pA", "/v2.0/ports", body) for _ in range(5)),
        )
        assert all(r.status_code < 500 for r in results), [r.text for r in results]
        await _assert_usage_is_rows(api)
        usage, _ = await _usage_and_rows(api)
        assert usage[("pA", "port")] <= 11 + 3  # only the DHCP ports may pass the limit
