"""Router static routes through the API (extraroute, extraroute-atomic): validation and
Neutron's error bodies, atomic add and remove, the interface a route needs, the desired
state the router's agent gets. The data plane is test_agent_routers*.py's."""

from __future__ import annotations

from typing import Any

from netapi_helpers import Api, fault_type, network_api

from network_svc.domain import desired
from network_svc.domain.common import transaction


def _message(resp: Any) -> str:
    return str(resp.json()["NeutronError"]["message"])


async def _lab(api: Api) -> dict[str, Any]:
    """pA's router with an interface on 10.61.0.0/24 and a gateway on 198.51.100.0/28."""
    body = {"network": {"name": "ext", "router:external": True}}
    ext = (await api.post("admin", "/v2.0/networks", body, "admin")).json()["network"]
    await api.subnet("admin", ext["id"], "198.51.100.0/28", enable_dhcp=False)
    net = await api.network("pA")
    sub = await api.subnet("pA", net["id"], "10.61.0.0/24")
    body = {"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}}
    resp = await api.post("pA", "/v2.0/routers", body)
    assert resp.status_code == 201, resp.text
    router = resp.json()["router"]
    added = await api.put(
        "pA", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}
    )
    assert added.status_code == 200, added.text
    return {"router": router, "subnet": sub, "path": f"/v2.0/routers/{router['id']}"}


async def _set(api: Api, path: str, routes: Any, project: str = "pA") -> Any:
    return await api.put(project, path, {"router": {"routes": routes}})


async def test_routes_are_validated_as_neutron_does(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        lab = await _lab(api)
        path, router_id = lab["path"], lab["router"]["id"]
        route = {"destination": "10.100.0.0/16", "nexthop": "10.61.0.254"}
        ok = await _set(api, path, [route])
        assert ok.status_code == 200, ok.text
        assert ok.json()["router"]["routes"] == [route]
        shown = (await api.get("pA", path)).json()["router"]
        assert shown["routes"] == [route]
        # a nexthop on the gateway's subnet is connected too: its gateway_ip (.1), which
        # the router's own gateway port (from the pool .2-.14) can never be
        via_gw = {"destination": "192.0.2.0/24", "nexthop": "198.51.100.1"}
        assert (await _set(api, path, [route, via_gw])).status_code == 200

        far = [{"destination": "10.100.0.0/16", "nexthop": "10.62.0.1"}]
        resp = await _set(api, path, far)
        assert resp.status_code == 400 and fault_type(resp) == "InvalidRoutes"
        assert _message(resp) == (
            f"Invalid format for routes: {far}, the nexthop is not connected with router"
        )
        own = [{"destination": "10.100.0.0/16", "nexthop": "10.61.0.1"}]
        resp = await _set(api, path, own)
        assert resp.status_code == 400 and fault_type(resp) == "InvalidRoutes"
        assert _message(resp).endswith("the nexthop is used by router")

        cases = {
            "Invalid input for routes. Reason: '10.100.0.0' is not a valid CIDR.": [
                {"destination": "10.100.0.0", "nexthop": "10.61.0.254"}
            ],
            "Invalid input for routes. Reason: 'x' is not a valid IP address.": [
                {"destination": "10.100.0.0/16", "nexthop": "x"}
            ],
            f"Invalid input for routes. Reason: Duplicate hostroute '{route}'.": [route, route],
            "Invalid input for routes. Reason: Invalid data format for hostroute: 'oops'.": "oops",
        }
        for message, routes in cases.items():
            resp = await _set(api, path, routes)
            assert resp.status_code == 400, (routes, resp.text)
            assert _message(resp) == message
        many = [{"destination": f"10.{n}.0.0/16", "nexthop": "10.61.0.254"} for n in range(31)]
        resp = await _set(api, path, many)
        assert resp.status_code == 400 and fault_type(resp) == "RoutesExhausted"
        assert _message(resp) == (
            f"Unable to complete operation for {router_id}. The number of routes exceeds "
            "the maximum 30."
        )
        # the refused updates changed nothing
        assert (await api.get("pA", path)).json()["router"]["routes"] == [route, via_gw]
        cleared = await _set(api, path, None)
        assert cleared.status_code == 200 and cleared.json()["router"]["routes"] == []

        # routes are not allowed in a create (allow_post False)
        body = {"router": {"name": "x", "routes": [route]}}
        resp = await api.post("pA", "/v2.0/routers", body)
        assert resp.status_code == 400
        assert _message(resp) == "Attribute 'routes' not allowed in POST"
        # another project's router is not found, whatever the body
        resp = await _set(api, path, [route], project="pB")
        assert resp.status_code == 404 and fault_type(resp) == "RouterNotFound"

        names = {e["alias"] for e in (await api.get("pA", "/v2.0/extensions")).json()["extensions"]}
        assert {"extraroute", "extraroute-atomic"} <= names


async def test_atomic_add_remove_and_the_interface_a_route_needs(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        lab = await _lab(api)
        path, sub = lab["path"], lab["subnet"]
        one = {"destination": "10.100.0.0/16", "nexthop": "10.61.0.254"}
        two = {"destination": "10.101.0.0/16", "nexthop": "10.61.0.253"}
        add = await api.put("pA", f"{path}/add_extraroutes", {"router": {"routes": [one]}})
        assert add.status_code == 200, add.text
        assert add.json()["router"]["routes"] == [one]
        again = await api.put("pA", f"{path}/add_extraroutes", {"router": {"routes": [one, two]}})
        assert again.json()["router"]["routes"] == [one, two]  # present ones stay once
        far = {"destination": "10.102.0.0/16", "nexthop": "10.9.9.9"}
        bad = await api.put("pA", f"{path}/add_extraroutes", {"router": {"routes": [far]}})
        assert bad.status_code == 400 and fault_type(bad) == "InvalidRoutes"
        for body in (None, {"routes": [one]}, {"router": {}}, {"router": {"routes": 5}}):
            resp = await api.put("pA", f"{path}/add_extraroutes", body)  # type: ignore[arg-type]
            assert resp.status_code == 400, (body, resp.text)
            assert set(resp.json()["NeutronError"]) == {"type", "message", "detail"}
        missing = "/v2.0/routers/00000000-0000-0000-0000-000000000000/add_extraroutes"
        resp = await api.put("pA", missing, {"router": {"routes": [one]}})
        assert resp.status_code == 404 and fault_type(resp) == "RouterNotFound"
        other = await api.put("pB", f"{path}/remove_extraroutes", {"router": {"routes": [one]}})
        assert other.status_code == 404

        # The interface the nexthops are on cannot go while a route needs it.
        body = {"subnet_id": sub["id"]}
        busy = await api.put("pA", f"{path}/remove_router_interface", body)
        assert busy.status_code == 409 and fault_type(busy) == "RouterInterfaceInUseByRoute"
        assert _message(busy) == (
            f"Router interface for subnet {sub['id']} on router {lab['router']['id']} cannot "
            "be deleted, as it is required by one or more routes."
        )
        sessions = api.app.state.runtime.sessions
        async with transaction(sessions) as session:
            state = await desired.router_state(session, lab["router"]["id"])
        assert state is not None
        assert [r.model_dump() for r in state.routes] == [one, two]

        gone = await api.put("pA", f"{path}/remove_extraroutes", {"router": {"routes": [one]}})
        assert gone.status_code == 200 and gone.json()["router"]["routes"] == [two]
        absent = await api.put("pA", f"{path}/remove_extraroutes", {"router": {"routes": [one]}})
        assert absent.status_code == 200 and absent.json()["router"]["routes"] == [two]
        await api.put("pA", f"{path}/remove_extraroutes", {"router": {"routes": [two]}})
        freed = await api.put("pA", f"{path}/remove_router_interface", body)
        assert freed.status_code == 200, freed.text
        async with transaction(sessions) as session:
            state = await desired.router_state(session, lab["router"]["id"])
        assert state is not None and state.routes == []
