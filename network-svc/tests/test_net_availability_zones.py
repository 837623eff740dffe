"""Availability zones through the API: the zones network nodes make, hints checked as
Neutron does and honoured by the DHCP and router scheduler, the zones networks, routers
and agents show. Scheduling reads the database only (no kernel, no agent)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from netapi_helpers import Api, fault_type, network_api

from common_rpc.agents import record_heartbeat
from network_svc.db.models import Router

RUN = secrets.token_hex(3)
A, B, C = f"az-a-{RUN}", f"az-b-{RUN}", f"az-c-{RUN}"
ZONES = {A: "az1", B: "az2"}  # C is in the default zone


def _message(resp: Any) -> str:
    return str(resp.json()["NeutronError"]["message"])


async def _heartbeats(api: Api, *hosts: str) -> None:
    async with api.app.state.deps.sessions() as session, session.begin():
        for host in hosts:
            await record_heartbeat(
                session,
                binary="network-agent",
                host=host,
                topic=f"network.{host}",
                started_at=datetime.now(UTC),
                capabilities={},
            )


async def _dhcp_host(api: Api, network_id: str) -> str:
    query = f"/v2.0/ports?device_owner=network:dhcp&network_id={network_id}"
    [port] = (await api.get("pA", query, "admin")).json()["ports"]
    return str(port["binding:host_id"])


async def test_zones_without_network_nodes_are_the_default(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        listed = await api.get("pA", "/v2.0/availability_zones", "reader")
        assert listed.status_code == 200, listed.text
        assert listed.json()["availability_zones"] == [
            {"name": "nova", "resource": "network", "state": "available"},
            {"name": "nova", "resource": "router", "state": "available"},
        ]
        net = await api.network("pA", availability_zone_hints=["nova"])
        assert net["availability_zone_hints"] == ["nova"]
        assert net["availability_zones"] == []  # no DHCP server yet
        await api.subnet("pA", net["id"], "10.71.0.0/24")
        shown = (await api.get("pA", f"/v2.0/networks/{net['id']}")).json()["network"]
        assert shown["availability_zones"] == ["nova"]  # DHCP on every host, all in nova
        plain = await api.network("pA")
        assert plain["availability_zone_hints"] == [] and plain["availability_zones"] == []
        body = {"router": {"name": "r", "availability_zone_hints": ["nova"]}}
        router = (await api.post("pA", "/v2.0/routers", body)).json()["router"]
        assert router["availability_zones"] == ["nova"]
        assert router["availability_zone_hints"] == ["nova"]
        names = {e["alias"] for e in (await api.get("pA", "/v2.0/extensions")).json()["extensions"]}
        assert {
            "availability_zone",
            "network_availability_zone",
            "router_availability_zone",
        } <= names


async def test_hints_choose_the_node_and_bad_ones_answer_as_neutron(tmp_path) -> None:
    settings = {"network_nodes": [A, B, C], "network_node_zones": ZONES}
    async with network_api(tmp_path, default_network_type="local", **settings) as api:
        await _heartbeats(api, A, B, C)
        listed = (await api.get("pA", "/v2.0/availability_zones")).json()["availability_zones"]
        assert {(z["name"], z["resource"]) for z in listed} == {
            (zone, kind) for zone in ("az1", "az2", "nova") for kind in ("network", "router")
        }
        only = await api.get("pA", "/v2.0/availability_zones?resource=router&name=az2")
        assert only.json()["availability_zones"] == [
            {"name": "az2", "resource": "router", "state": "available"}
        ]
        bad_filter = await api.get("pA", "/v2.0/availability_zones?zone=az1")
        assert bad_filter.status_code == 400

        # Without hints the least loaded node (A first); with them, a node of the zone.
        for hint, host, zone in ((["az2"], B, "az2"), (["nova"], C, "nova"), (None, A, "az1")):
            attrs = {"availability_zone_hints": hint} if hint else {}
            net = await api.network("pA", **attrs)
            await api.subnet("pA", net["id"], "10.72.0.0/24")
            assert await _dhcp_host(api, net["id"]) == host, hint
            shown = (await api.get("pA", f"/v2.0/networks/{net['id']}")).json()["network"]
            assert shown["availability_zones"] == [zone]
            assert shown["availability_zone_hints"] == (hint or [])
        listing = (await api.get("pA", "/v2.0/networks")).json()["networks"]
        assert sorted(n["availability_zones"][0] for n in listing) == ["az1", "az2", "nova"]
        for hint, host in ((["az2"], B), (["az1", "nova"], A)):
            body = {"router": {"name": "r", "availability_zone_hints": hint}}
            resp = await api.post("pA", "/v2.0/routers", body)
            assert resp.status_code == 201, resp.text
            router = resp.json()["router"]
            async with api.app.state.deps.sessions() as session:
                assert (await session.get(Router, router["id"])).host == host
            assert router["availability_zones"] == [ZONES[host]]
            assert router["availability_zone_hints"] == hint

        # Unknown zones: 404; malformed hints: 400, as Neutron words them; nothing made.
        before = len((await api.get("pA", "/v2.0/networks")).json()["networks"])
        unknown = await api.post(
            "pA", "/v2.0/networks", {"network": {"availability_zone_hints": ["az1", "az9"]}}
        )
        assert unknown.status_code == 404 and fault_type(unknown) == "AvailabilityZoneNotFound"
        assert _message(unknown) == "AvailabilityZone az9 could not be found."
        body = {"router": {"availability_zone_hints": ["elsewhere"]}}
        resp = await api.post("pA", "/v2.0/routers", body)
        assert resp.status_code == 404 and fault_type(resp) == "AvailabilityZoneNotFound"
        reason = "Invalid input for availability_zone_hints. Reason: "
        cases = [
            ("az1", f"{reason}'az1' is not a list."),
            (["az1", "az1"], f"{reason}Duplicate items in the list: 'az1'."),
            ([5], f"{reason}'5' is not a valid string."),
            (
                ["z" * 300],
                "Invalid input for operation: Too many availability_zone_hints specified.",
            ),
        ]
        for value, message in cases:
            for path, key in (("/v2.0/networks", "network"), ("/v2.0/routers", "router")):
                resp = await api.post("pA", path, {key: {"availability_zone_hints": value}})
                assert resp.status_code == 400, (path, value, resp.text)
                assert _message(resp) == message
        after = len((await api.get("pA", "/v2.0/networks")).json()["networks"])
        assert after == before

        # Hints are set at create only (allow_put False).
        net = listing[0]
        for path, key in ((f"/v2.0/networks/{net['id']}", "network"),):
            resp = await api.put("pA", path, {key: {"availability_zone_hints": ["az1"]}})
            assert resp.status_code == 400
            assert _message(resp) == "Cannot update read-only attribute availability_zone_hints"
        resp = await api.put(
            "pA", f"/v2.0/routers/{router['id']}", {"router": {"availability_zone_hints": []}}
        )
        assert resp.status_code == 400

        # Each network-agent shows the zone of its host.
        agents = (await api.get("admin", "/v2.0/agents", "admin")).json()["agents"]
        assert {a["host"]: a["availability_zone"] for a in agents} == {
            A: "az1",
            B: "az2",
            C: "nova",
        }
        filtered = await api.get("admin", "/v2.0/agents?availability_zone=az2", "admin")
        assert [a["host"] for a in filtered.json()["agents"]] == [B]
