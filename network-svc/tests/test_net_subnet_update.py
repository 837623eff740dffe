"""Subnet updates as Neutron has them: gateway, pools, DNS servers, host routes, DHCP,
checked with Neutron's faults, and the desired state the hosts are sent following."""

from __future__ import annotations

from typing import Any

from netapi_helpers import Api, fault_type, network_api
from test_net_routers import db_fixture

from common_rpc.audit import request_audit
from network_svc.domain import desired
from network_svc.domain.common import transaction

__all__ = ["db_fixture"]  # the fixture is used by name


def _error(resp: Any) -> tuple[int, str, str]:
    body = resp.json()["NeutronError"]
    return resp.status_code, body["type"], body["message"]


async def _net_state(api: Api, network_id: str) -> dict[str, Any]:
    """The network's state as its hosts get it (the wire JSON)."""
    async with transaction(api.app.state.runtime.sessions, write=False) as session:
        return (await desired.network_state(session, network_id)).model_dump(mode="json")


async def _audited_clean(api: Api, networks: int) -> None:
    """The network audit (what `stackling audit` asks for) finds the database consistent
    after the updates: each address in its subnet and held once, a DHCP address for every
    DHCP subnet. No agent runs here: the hosts' side is test_agent_subnet_update's."""
    report = await request_audit(api.app.state.runtime.rpc, api.topic, timeout=30)
    assert report.findings == [], report
    assert report.checked["networks"] == networks, report.checked


async def test_update_gateway_dns_routes_dhcp_as_tempest_does(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        sub = await api.subnet(
            "pA",
            net["id"],
            "10.20.0.0/28",
            gateway_ip="10.20.0.1",
            allocation_pools=[{"start": "10.20.0.3", "end": "10.20.0.7"}],
            dns_nameservers=["8.8.4.4", "8.8.8.8"],
            host_routes=[{"destination": "10.30.0.0/32", "nexthop": "10.100.1.1"}],
        )
        before = await _net_state(api, net["id"])
        change = {
            "name": "New_subnet",
            "gateway_ip": "10.20.0.2",
            "dns_nameservers": ["7.8.8.8", "7.8.4.4"],
            "host_routes": [{"destination": "10.30.0.0/32", "nexthop": "10.100.1.2"}],
            "enable_dhcp": True,
        }
        resp = await api.put("pA", f"/v2.0/subnets/{sub['id']}", {"subnet": change})
        assert resp.status_code == 200, resp.text
        updated = resp.json()["subnet"]
        for key, value in change.items():
            assert updated[key] == value, key
        assert updated["allocation_pools"] == sub["allocation_pools"]
        assert updated["revision_number"] == sub["revision_number"] + 1
        shown = (await api.get("pA", f"/v2.0/subnets/{sub['id']}")).json()["subnet"]
        assert shown == updated
        # What the hosts are sent: the new options, under a newer generation.
        after = await _net_state(api, net["id"])
        assert after["generation"] > before["generation"]
        [spec] = after["subnets"]
        assert spec["gateway_ip"] == "10.20.0.2" and spec["dns_nameservers"] == [
            "7.8.8.8",
            "7.8.4.4",
        ]
        assert spec["host_routes"] == [{"destination": "10.30.0.0/32", "nexthop": "10.100.1.2"}]
        # The gateway can go; a name-only update leaves the hosts alone.
        resp = await api.put("pA", f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": None}})
        assert resp.json()["subnet"]["gateway_ip"] is None
        generation = (await _net_state(api, net["id"]))["generation"]
        await api.put("pA", f"/v2.0/subnets/{sub['id']}", {"subnet": {"description": "d"}})
        assert (await _net_state(api, net["id"]))["generation"] == generation
        await _audited_clean(api, networks=1)


async def test_update_refusals_are_neutrons(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        pool = [{"start": "10.20.0.10", "end": "10.20.0.20"}]
        sub = await api.subnet("pA", net["id"], "10.20.0.0/24", allocation_pools=pool)
        path = f"/v2.0/subnets/{sub['id']}"
        cases: list[tuple[dict[str, Any], int, str, str]] = [
            ({"gateway_ip": "10.20.0.15"}, 409, "GatewayConflictWithAllocationPools",
             "Gateway ip 10.20.0.15 conflicts with allocation pool 10.20.0.10-10.20.0.20."),
            ({"gateway_ip": "10.20.0.0"}, 400, "InvalidInput",
             "Invalid input for operation: Gateway is not valid on subnet."),
            ({"gateway_ip": "10.20.0.255"}, 400, "InvalidInput",
             "Invalid input for operation: Gateway is not valid on subnet."),
            ({"gateway_ip": "10.21.0.1"}, 400, "InvalidInput",
             "Invalid input for operation: Gateway is not valid on subnet."),
            ({"gateway_ip": "fd00::1"}, 400, "InvalidInput",
             "Invalid input for operation: gateway_ip 'fd00::1' does not match the "
             "ip_version '4'."),
            ({"gateway_ip": "bad"}, 400, "HTTPBadRequest",
             "Invalid input for gateway_ip. Reason: 'bad' is not a valid IP address."),
            ({"allocation_pools": [{"start": "10.20.0.1", "end": "10.20.0.9"}]}, 409,
             "GatewayConflictWithAllocationPools",
             "Gateway ip 10.20.0.1 conflicts with allocation pool 10.20.0.1-10.20.0.9."),
            ({"allocation_pools": [{"start": "10.20.0.2", "end": "10.20.0.20"},
                                   {"start": "10.20.0.15", "end": "10.20.0.30"}]}, 409,
             "OverlappingAllocationPools",
             "Found overlapping allocation pools: 10.20.0.2-10.20.0.20 "
             "10.20.0.15-10.20.0.30 for subnet 10.20.0.0/24."),
            ({"allocation_pools": [{"start": "10.20.0.200", "end": "10.20.1.5"}]}, 400,
             "OutOfBoundsAllocationPool",
             "The allocation pool 10.20.0.200-10.20.1.5 spans beyond the subnet cidr "
             "10.20.0.0/24."),
            ({"allocation_pools": [{"start": "10.20.0.9", "end": "10.20.0.5"}]}, 400,
             "InvalidAllocationPool",
             "The allocation pool {'start': '10.20.0.9', 'end': '10.20.0.5'} is not valid."),
            ({"allocation_pools": [{"start": "10.20.0.9"}]}, 400, "HTTPBadRequest",
             "Invalid input for allocation_pools. Reason: Validation of dictionary's keys "
             "failed. Expected keys: {'end', 'start'} Provided keys: {'start'}."),
            ({"dns_nameservers": [f"10.0.0.{n}" for n in range(6)]}, 400,
             "DNSNameServersExhausted",
             f"Unable to complete operation for {sub['id']}. The number of DNS nameservers "
             "exceeds the limit 5."),
            ({"dns_nameservers": ["8.8.8.8", "8.8.8.8"]}, 400, "HTTPBadRequest",
             "Invalid input for dns_nameservers. Reason: Duplicate nameserver '8.8.8.8'."),
            ({"dns_nameservers": ["8.8.8"]}, 400, "HTTPBadRequest",
             "Invalid input for dns_nameservers. Reason: '8.8.8' is not a valid nameserver. "
             "'8.8.8' is not a valid IP address."),
            ({"host_routes": [{"destination": "10.0.0.1/8", "nexthop": "10.20.0.3"}]}, 400,
             "HTTPBadRequest",
             "Invalid input for host_routes. Reason: '10.0.0.1/8' is not a valid CIDR."),
            ({"host_routes": [{"destination": "fd00::/64", "nexthop": "fd00::1"}]}, 400,
             "InvalidInput",
             "Invalid input for operation: nexthop 'fd00::1' does not match the "
             "ip_version '4'."),
            ({"enable_dhcp": "maybe"}, 400, "InvalidInput",
             "Invalid input for operation: 'maybe' cannot be converted to boolean."),
            ({"cidr": "10.20.0.0/16"}, 400, "HTTPBadRequest",
             "Cannot update read-only attribute cidr"),
            ({"network_id": net["id"]}, 400, "HTTPBadRequest",
             "Cannot update read-only attribute network_id"),
        ]  # fmt: skip
        for change, status, kind, message in cases:
            resp = await api.put("pA", path, {"subnet": change})
            assert _error(resp) == (status, kind, message), change
        # Nothing of the refused changes stayed.
        shown = (await api.get("pA", path)).json()["subnet"]
        assert shown == sub
        missing = await api.put("pA", "/v2.0/subnets/nope", {"subnet": {"name": "x"}})
        assert _error(missing) == (404, "SubnetNotFound", "Subnet nope could not be found.")
        theirs = await api.put("pB", path, {"subnet": {"name": "x"}})
        assert theirs.status_code == 404 and fault_type(theirs) == "SubnetNotFound"
        await _audited_clean(api, networks=1)


async def test_gateway_held_by_a_router_cannot_move(tmp_path, db) -> None:
    """On SQLite and PostgreSQL (the subnet's row lock)."""
    async with network_api(tmp_path, **db) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.20.0.0/24")
        router = (await api.post("pA", "/v2.0/routers", {"router": {"name": "r"}})).json()
        rpath = f"/v2.0/routers/{router['router']['id']}"
        added = await api.put("pA", f"{rpath}/add_router_interface", {"subnet_id": sub["id"]})
        port_id = added.json()["port_id"]
        path = f"/v2.0/subnets/{sub['id']}"
        for gateway in ("10.20.0.254", None):
            resp = await api.put("pA", path, {"subnet": {"gateway_ip": gateway}})
            assert _error(resp) == (
                409,
                "GatewayIpInUse",
                f"Current gateway ip 10.20.0.1 already in use by port {port_id}. Unable to update.",
            )
        # The same gateway again is no change; the other attributes still update.
        same = await api.put("pA", path, {"subnet": {"gateway_ip": "10.20.0.1", "name": "n"}})
        assert same.status_code == 200
        await api.put("pA", f"{rpath}/remove_router_interface", {"subnet_id": sub["id"]})
        # Free again: the gateway moves (out of the pool, which is shrunk at the same time).
        pools = [{"start": "10.20.0.2", "end": "10.20.0.200"}]
        moved = {"gateway_ip": "10.20.0.254", "allocation_pools": pools}
        resp = await api.put("pA", path, {"subnet": moved})
        assert resp.status_code == 200, resp.text
        assert resp.json()["subnet"]["gateway_ip"] == "10.20.0.254"
        await _audited_clean(api, networks=1)


async def test_router_gateway_next_hop_follows_the_external_gateway(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        body = {"network": {"name": "ext", "router:external": True}}
        ext = (await api.post("admin", "/v2.0/networks", body, "admin")).json()["network"]
        pool = [{"start": "10.83.0.10", "end": "10.83.0.50"}]
        ext_sub = await api.subnet(
            "admin", ext["id"], "10.83.0.0/24", allocation_pools=pool, enable_dhcp=False
        )
        body = {"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}}
        router = (await api.post("pA", "/v2.0/routers", body)).json()["router"]
        sessions = api.app.state.runtime.sessions
        async with transaction(sessions, write=False) as session:
            state = await desired.router_state(session, router["id"])
        assert state is not None and state.gateway and state.gateway.next_hop == "10.83.0.1"
        change = {"subnet": {"gateway_ip": "10.83.0.254"}}
        resp = await api.put("admin", f"/v2.0/subnets/{ext_sub['id']}", change, "admin")
        assert resp.status_code == 200, resp.text
        async with transaction(sessions, write=False) as session:
            moved = await desired.router_state(session, router["id"])
        assert moved is not None and moved.gateway and moved.gateway.next_hop == "10.83.0.254"
        assert moved.generation > state.generation
        await _audited_clean(api, networks=1)


async def test_pools_shrink_around_held_addresses_and_dhcp_goes_and_comes(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.20.0.0/24")
        port = await api.port("pA", net["id"], fixed_ips=[{"ip_address": "10.20.0.100"}])
        path = f"/v2.0/subnets/{sub['id']}"
        pools = [{"start": "10.20.0.200", "end": "10.20.0.210"}]
        resp = await api.put("pA", path, {"subnet": {"allocation_pools": pools}})
        assert resp.status_code == 200 and resp.json()["subnet"]["allocation_pools"] == pools
        # Held addresses stay held (as in Neutron); new ones come from the new pool.
        kept = (await api.get("pA", f"/v2.0/ports/{port['id']}")).json()["port"]
        assert kept["fixed_ips"][0]["ip_address"] == "10.20.0.100"
        fresh = await api.port("pA", net["id"])
        assert fresh["fixed_ips"][0]["ip_address"].startswith("10.20.0.2")
        dhcp_ports = f"/v2.0/ports?device_owner=network:dhcp&network_id={net['id']}"
        assert len((await api.get("pA", dhcp_ports)).json()["ports"]) == 1
        off = await api.put("pA", path, {"subnet": {"enable_dhcp": False}})
        assert off.json()["subnet"]["enable_dhcp"] is False
        assert (await api.get("pA", dhcp_ports)).json()["ports"] == []
        assert (await _net_state(api, net["id"]))["subnets"][0]["dhcp_server_ip"] is None
        on = await api.put("pA", path, {"subnet": {"enable_dhcp": True}})
        assert on.json()["subnet"]["enable_dhcp"] is True
        [dhcp] = (await api.get("pA", dhcp_ports)).json()["ports"]
        # The DHCP port takes the first free address of the (new) pool.
        assert dhcp["fixed_ips"][0]["ip_address"].startswith("10.20.0.2")
        state = await _net_state(api, net["id"])
        assert state["subnets"][0]["dhcp_server_ip"] == dhcp["fixed_ips"][0]["ip_address"]
        await _audited_clean(api, networks=1)
