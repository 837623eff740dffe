"""``port_details`` on floating IPs (Neutron's fip-port-details): the associated port's
name, network, MAC, state, status and device; null while unassociated."""

from __future__ import annotations

from netapi_helpers import network_api
from test_net_routers import _add, _external, _router

KEYS = {"name", "network_id", "mac_address", "admin_state_up", "status", "device_id"}
KEYS |= {"device_owner"}


async def test_port_details_follow_the_association(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        ext, _sub = await _external(api, "198.51.100.0/29")
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.4.0.0/24")
        vm = await api.port(
            "pA", net["id"], name="web", device_owner="compute:nova", device_id="server-1"
        )
        router = await _router(api, "pA", external_gateway_info={"network_id": ext["id"]})
        assert (await _add(api, "pA", router["id"], subnet_id=sub["id"])).status_code == 200
        body = {"floatingip": {"floating_network_id": ext["id"]}}
        created = await api.post("pA", "/v2.0/floatingips", body)
        fip = created.json()["floatingip"]
        assert "port_details" in fip and fip["port_details"] is None
        url = f"/v2.0/floatingips/{fip['id']}"

        bound = (await api.put("pA", url, {"floatingip": {"port_id": vm["id"]}})).json()
        expected = {
            "name": "web",
            "network_id": net["id"],
            "mac_address": vm["mac_address"],
            "admin_state_up": True,
            "status": vm["status"],
            "device_id": "server-1",
            "device_owner": "compute:nova",
        }
        assert set(expected) == KEYS
        assert bound["floatingip"]["port_details"] == expected
        shown = (await api.get("pA", url)).json()["floatingip"]
        assert shown["port_details"] == expected
        other = await api.post("pA", "/v2.0/floatingips", body)
        listed = (await api.get("pA", "/v2.0/floatingips")).json()["floatingips"]
        details = {f["id"]: f["port_details"] for f in listed}
        assert details == {fip["id"]: expected, other.json()["floatingip"]["id"]: None}

        # the port changes: so do its details
        renamed = await api.put("pA", f"/v2.0/ports/{vm['id']}", {"port": {"name": "db"}})
        assert renamed.status_code == 200
        shown = (await api.get("pA", url)).json()["floatingip"]
        assert shown["port_details"] == expected | {"name": "db"}

        freed = await api.put("pA", url, {"floatingip": {"port_id": None}})
        assert freed.json()["floatingip"]["port_details"] is None
        aliases = {
            e["alias"] for e in (await api.get("pA", "/v2.0/extensions")).json()["extensions"]
        }
        assert "fip-port-details" in aliases
