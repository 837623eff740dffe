"""Routers and floating IPs through the API: shapes, interfaces, 409s, scoping, IPAM, events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from netapi_helpers import Api, fault_type, network_api
from test_net_ipam_concurrency import temp_postgres

from common_rpc import Event, RequestContext
from common_rpc.broker import close_channel
from common_rpc.events import dead_letter_queue, group_queue
from common_rpc.testing import wait_for
from network_svc.db.models import FloatingIp
from network_svc.domain import desired
from network_svc.domain.common import transaction


async def _external(api: Api, cidr: str = "203.0.113.0/28") -> tuple[dict[str, Any], Any]:
    body = {"network": {"name": "public", "router:external": True}}
    resp = await api.post("admin", "/v2.0/networks", body, "admin")
    assert resp.status_code == 201, resp.text
    net = resp.json()["network"]
    sub = await api.subnet("admin", net["id"], cidr, enable_dhcp=False)
    return net, sub


MEMBER_A = RequestContext(project_id="pA", roles=frozenset({"member"}))


@pytest.fixture(name="db", params=["sqlite", "postgresql"])
async def db_fixture(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Settings for network_api: the default SQLite file, or a throwaway PostgreSQL DB."""
    if request.param == "sqlite":
        yield {"default_network_type": "local"}
        return
    async with temp_postgres() as url:
        yield {"default_network_type": "local", "db_url": url}


async def _router(api: Api, project: str, **attrs: Any) -> dict[str, Any]:
    resp = await api.post(project, "/v2.0/routers", {"router": {"name": "r1", **attrs}})
    assert resp.status_code == 201, resp.text
    return resp.json()["router"]


async def _add(api: Api, project: str, router_id: str, **body: Any) -> Any:
    return await api.put(project, f"/v2.0/routers/{router_id}/add_router_interface", body)


@asynccontextmanager
async def _events(api: Api) -> AsyncIterator[set[str]]:
    """The event types published while the block runs (router and floating IP ones)."""
    seen: set[str] = set()

    async def record(event: Event) -> None:
        seen.add(event.event_type)

    group = f"l3test{uuid.uuid4().hex[:8]}"
    patterns = ["network.router.#", "network.floatingip.#"]
    subscriber = api.app.state.runtime.subscribe(group, patterns, record)
    await subscriber.start()  # the runtime stops it with the app
    try:
        yield seen
    finally:
        broker = api.app.state.runtime.broker
        channel = await broker.channel(broker.config.url_for_events())
        try:  # nothing of this test stays on the broker
            for queue in (group_queue(group), dead_letter_queue(group)):
                await channel.queue_delete(queue)
        finally:
            await close_channel(channel)


async def _expect(seen: set[str], resource: str) -> None:
    wanted = {f"network.{resource}.{action}.end" for action in ("create", "update", "delete")}

    async def arrived() -> bool:
        return wanted <= seen

    await wait_for(arrived, timeout=10)


async def test_router_shape_gateway_interfaces_and_409s(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api, _events(api) as seen:
        ext, ext_sub = await _external(api)
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.1.0.0/24")
        router = await _router(api, "pA", external_gateway_info={"network_id": ext["id"]})
        assert router["project_id"] == router["tenant_id"] == "pA"
        assert router["status"] == "ACTIVE" and router["admin_state_up"] is True
        assert router["routes"] == [] and router["distributed"] is False
        gw = router["external_gateway_info"]
        assert gw["network_id"] == ext["id"] and gw["enable_snat"] is True
        [fixed] = gw["external_fixed_ips"]
        assert fixed["subnet_id"] == ext_sub["id"] and fixed["ip_address"].startswith("203.0.113.")

        added = await _add(api, "pA", router["id"], subnet_id=sub["id"])
        assert added.status_code == 200, added.text
        info = added.json()
        assert info["id"] == router["id"] and info["subnet_ids"] == [sub["id"]]
        assert info["network_id"] == net["id"] and info["project_id"] == "pA"
        port = (await api.get("pA", f"/v2.0/ports/{info['port_id']}")).json()["port"]
        assert port["device_owner"] == "network:router_interface"
        assert port["device_id"] == router["id"]
        assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.1.0.1"}]

        again = await _add(api, "pA", router["id"], subnet_id=sub["id"])
        assert again.status_code == 400
        both = await _add(api, "pA", router["id"], subnet_id=sub["id"], port_id=port["id"])
        assert both.status_code == 400
        in_use = await api.delete("pA", f"/v2.0/routers/{router['id']}")
        assert in_use.status_code == 409 and fault_type(in_use) == "RouterInUse"
        subnet_gone = await api.delete("pA", f"/v2.0/subnets/{sub['id']}")
        assert subnet_gone.status_code == 409 and fault_type(subnet_gone) == "SubnetInUse"

        # Another project sees neither the router nor may it attach to it.
        other = await api.get("pB", f"/v2.0/routers/{router['id']}")
        assert other.status_code == 404 and fault_type(other) == "RouterNotFound"
        assert (await _add(api, "pB", router["id"], subnet_id=sub["id"])).status_code == 404
        assert (await api.get("pB", "/v2.0/routers")).json()["routers"] == []

        # A gateway on a non-external network is refused; an unknown one is 404.
        bad = await api.put(
            "pA",
            f"/v2.0/routers/{router['id']}",
            {"router": {"external_gateway_info": {"network_id": net["id"]}}},
        )
        assert bad.status_code == 400
        missing = await api.put(
            "pA",
            f"/v2.0/routers/{router['id']}",
            {"router": {"external_gateway_info": {"network_id": str(uuid.uuid4())}}},
        )
        assert missing.status_code == 404
        not_an_id = await api.put(
            "pA",
            f"/v2.0/routers/{router['id']}",
            {"router": {"external_gateway_info": {"network_id": "nope"}}},
        )
        assert not_an_id.status_code == 400  # Neutron's type:uuid check

        removed = await api.put(
            "pA", f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]}
        )
        assert removed.status_code == 200 and removed.json()["port_id"] == port["id"]
        assert (await api.get("pA", f"/v2.0/ports/{port['id']}")).status_code == 404
        not_there = await api.put(
            "pA", f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]}
        )
        assert not_there.status_code == 404

        cleared = await api.put(
            "pA", f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": None}}
        )
        assert cleared.json()["router"]["external_gateway_info"] is None
        assert (await api.delete("pA", f"/v2.0/routers/{router['id']}")).status_code == 204
        assert (await api.delete("pA", f"/v2.0/subnets/{sub['id']}")).status_code == 204
        await _expect(seen, "router")


async def test_interface_by_port_and_router_port_guard(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.2.0.0/24")
        router = await _router(api, "pA")
        port = await api.port("pA", net["id"], fixed_ips=[{"ip_address": "10.2.0.9"}])
        added = await _add(api, "pA", router["id"], port_id=port["id"])
        assert added.status_code == 200, added.text
        assert added.json()["subnet_id"] == sub["id"] and added.json()["port_id"] == port["id"]
        shown = (await api.get("pA", f"/v2.0/ports/{port['id']}")).json()["port"]
        assert shown["device_owner"] == "network:router_interface"
        # A router's port leaves through the router, and holds its subnet.
        gone = await api.delete("pA", f"/v2.0/ports/{port['id']}")
        assert gone.status_code == 409 and fault_type(gone) == "ServicePortInUse"
        held = await api.delete("pA", f"/v2.0/subnets/{sub['id']}")
        assert held.status_code == 409 and fault_type(held) == "SubnetInUse"
        listed = await api.get("pA", "/v2.0/routers?name=r1&fields=id&fields=name")
        assert listed.json()["routers"] == [{"id": router["id"], "name": "r1"}]
        paged = await api.get("pA", "/v2.0/routers?limit=1")
        assert len(paged.json()["routers"]) == 1


async def test_floating_ip_allocate_associate_and_uniqueness(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api, _events(api) as seen:
        ext, _ext_sub = await _external(api, "198.51.100.0/29")  # pool .2-.6: five addresses
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.3.0.0/24")
        vm = await api.port("pA", net["id"], device_owner="compute:nova")
        body = {"floatingip": {"floating_network_id": ext["id"]}}

        fip = (await api.post("pA", "/v2.0/floatingips", body)).json()["floatingip"]
        assert fip["status"] == "DOWN" and fip["port_id"] is None and fip["router_id"] is None
        assert fip["floating_network_id"] == ext["id"] and fip["tenant_id"] == "pA"
        url = f"/v2.0/floatingips/{fip['id']}"

        # No router joins the port's subnet to the external network yet: 404.
        lonely = await api.put("pA", url, {"floatingip": {"port_id": vm["id"]}})
        assert lonely.status_code == 404
        assert fault_type(lonely) == "ExternalGatewayForFloatingIPNotFound"
        router = await _router(api, "pA", external_gateway_info={"network_id": ext["id"]})
        assert (await _add(api, "pA", router["id"], subnet_id=sub["id"])).status_code == 200
        bound = await api.put("pA", url, {"floatingip": {"port_id": vm["id"]}})
        assert bound.status_code == 200, bound.text
        shown = bound.json()["floatingip"]
        assert shown["router_id"] == router["id"] and shown["status"] == "ACTIVE"
        assert shown["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]

        # One floating IP per fixed IP; the interface and gateway it needs are held.
        second = (await api.post("pA", "/v2.0/floatingips", body)).json()["floatingip"]
        dup = await api.put(
            "pA", f"/v2.0/floatingips/{second['id']}", {"floatingip": {"port_id": vm["id"]}}
        )
        assert dup.status_code == 409 and fault_type(dup) == "FloatingIPPortAlreadyAssociated"
        busy = await api.put(
            "pA", f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]}
        )
        assert busy.status_code == 409
        other = await api.get("pB", url)
        assert other.status_code == 404
        assert (await api.put("pB", url, {"floatingip": {"port_id": None}})).status_code == 404

        # Allocation from the pool: each address once, then a clear 409 (router gw holds one).
        more = await asyncio.gather(*(api.post("pA", "/v2.0/floatingips", body) for _ in range(4)))
        assert sorted(r.status_code for r in more) == [201, 201, 409, 409]
        listed = (await api.get("pA", "/v2.0/floatingips")).json()["floatingips"]
        addresses = [f["floating_ip_address"] for f in listed]
        gw_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        assert len(addresses) == len(set(addresses)) == 4 and gw_ip not in addresses
        ports = await api.get("admin", "/v2.0/ports?device_owner=network:floatingip", "admin")
        assert len(ports.json()["ports"]) == 4

        freed = await api.put("pA", url, {"floatingip": {"port_id": None}})
        assert freed.json()["floatingip"]["port_id"] is None
        assert freed.json()["floatingip"]["status"] == "DOWN"
        for item in listed:
            assert (await api.delete("pA", f"/v2.0/floatingips/{item['id']}")).status_code == 204
        ports = await api.get("admin", "/v2.0/ports?device_owner=network:floatingip", "admin")
        assert ports.json()["ports"] == []
        assert (await api.post("pA", "/v2.0/floatingips", {"floatingip": {}})).status_code == 400
        not_ext = {"floatingip": {"floating_network_id": net["id"]}}
        assert (await api.post("pA", "/v2.0/floatingips", not_ext)).status_code == 400
        await _expect(seen, "floatingip")
        extensions = (await api.get("pA", "/v2.0/extensions")).json()["extensions"]
        aliases = {e["alias"] for e in extensions}
        assert {"router", "ext-gw-mode", "floatingip", "l3"} <= aliases


async def test_deleting_a_port_unmaps_its_floating_ip(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        ext, _ext_sub = await _external(api, "198.51.100.16/28")
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.4.0.0/24")
        router = await _router(api, "pA", external_gateway_info={"network_id": ext["id"]})
        assert (await _add(api, "pA", router["id"], subnet_id=sub["id"])).status_code == 200
        vm = await api.port("pA", net["id"], device_owner="compute:nova")
        body = {"floatingip": {"floating_network_id": ext["id"], "port_id": vm["id"]}}
        fip = (await api.post("pA", "/v2.0/floatingips", body)).json()["floatingip"]
        sessions = api.app.state.runtime.sessions
        async with transaction(sessions) as session:
            state = await desired.router_state(session, router["id"])
        assert state is not None
        assert state.model_dump(mode="json")["floating_ips"] == [
            {
                "floating_ip": fip["floating_ip_address"],
                "fixed_ip": vm["fixed_ips"][0]["ip_address"],
            }
        ]
        assert (await api.delete("pA", f"/v2.0/ports/{vm['id']}")).status_code == 204
        shown = (await api.get("pA", f"/v2.0/floatingips/{fip['id']}")).json()["floatingip"]
        assert shown["port_id"] is None and shown["router_id"] is None
        assert shown["status"] == "DOWN"
        # Released in the port delete's own transaction: the mapping is gone at once.
        async with transaction(sessions) as session:
            changed_state = await desired.router_state(session, router["id"])
            row = await session.get(FloatingIp, fip["id"])
            assert row is not None and row.router_id is None and row.fixed_ip_address is None
        assert changed_state is not None and changed_state.floating_ips == []


async def test_bad_input_is_4xx_never_500(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        ext, ext_sub = await _external(api, "198.51.100.32/28")
        router = await _router(api, "pA")
        url = f"/v2.0/routers/{router['id']}"
        bad_routers = [
            None,
            {"router": "x"},
            {"router": {"name": 5}},
            {"router": {"external_gateway_info": "x"}},
            {"router": {"external_gateway_info": {"network_id": ext["id"], "enable_snat": "no"}}},
            {
                "router": {
                    "external_gateway_info": {"network_id": ext["id"], "external_fixed_ips": 3}
                }
            },
            {"router": {"external_gateway_info": {"external_fixed_ips": []}}},
            {
                "router": {
                    "external_gateway_info": {
                        "network_id": ext["id"],
                        "external_fixed_ips": [{"ip_address": "10.9.9.9"}],
                    }
                }
            },
            {
                "router": {
                    "external_gateway_info": {
                        "network_id": ext["id"],
                        "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "x"}],
                    }
                }
            },
            {"router": {"routes": [{"destination": "10.0.0.0/8", "nexthop": "10.0.0.1"}]}},
        ]
        for body in bad_routers:
            resp = await api.put("pA", url, body)  # type: ignore[arg-type]
            assert 400 <= resp.status_code < 500, (body, resp.text)
            assert "NeutronError" in resp.json()
        for body in ({}, {"subnet_id": 7}, {"port_id": "nope"}, {"subnet_id": "a", "port_id": "b"}):
            resp = await _add(api, "pA", router["id"], **body)
            assert 400 <= resp.status_code < 500, (body, resp.text)
        bad_fips = [
            {"floatingip": {"floating_network_id": ext["id"], "floating_ip_address": "nope"}},
            {"floatingip": {"floating_network_id": ext["id"], "floating_ip_address": "10.0.0.1"}},
            {"floatingip": {"floating_network_id": ext["id"], "subnet_id": "other"}},
            {"floatingip": {"floating_network_id": ext["id"], "port_id": "nope"}},
            {"floatingip": {"floating_network_id": ext["id"], "description": ["x"]}},
            {"floatingip": {"floating_network_id": "missing"}},
        ]
        for body in bad_fips:
            resp = await api.post("pA", "/v2.0/floatingips", body)
            assert 400 <= resp.status_code < 500, (body, resp.text)
        listed = (await api.get("pA", "/v2.0/floatingips")).json()["floatingips"]
        assert listed == []  # a refused create released its address and port
        ports = await api.get("admin", "/v2.0/ports?device_owner=network:floatingip", "admin")
        assert ports.json()["ports"] == []
