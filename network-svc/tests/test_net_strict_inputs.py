"""Strict inputs: MACs, names, UUIDs, enums and the list parameters answer 400 or 404 as
Neutron does, with its error body; no input answers a 5xx."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from netapi_helpers import Api, fault_type, network_api


def fault(resp: Any, status: int, fault_type_: str | None = None) -> bool:
    body = resp.json()["NeutronError"]
    assert set(body) == {"type", "message", "detail"}, body
    return resp.status_code == status and fault_type_ in (None, body["type"])


async def test_mac_addresses_are_unicast_and_not_zero(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        for mac in (
            "01:00:5e:00:00:01",  # IPv4 multicast
            "33:33:00:00:00:01",  # IPv6 multicast
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "fa:16:3e:00:00",
            "fa:16:3e:00:00:zz",
            "fa:16:3e:00:00:01 ",
            7,
        ):
            body = {"port": {"network_id": net["id"], "mac_address": mac}}
            resp = await api.post("pA", "/v2.0/ports", body)
            assert fault(resp, 400, "HTTPBadRequest"), (mac, resp.text)
            assert "Invalid input for mac_address" in resp.json()["NeutronError"]["message"]
        port = await api.port("pA", net["id"], mac_address="FA-16-3E-00-00-01")
        assert port["mac_address"] == "fa:16:3e:00:00:01"
        resp = await api.put(
            "adm",
            f"/v2.0/ports/{port['id']}",
            {"port": {"mac_address": "01:00:00:00:00:01"}},
            "admin",
        )
        assert fault(resp, 400)
        other = await api.port("pA", net["id"])
        taken = await api.put(
            "adm",
            f"/v2.0/ports/{other['id']}",
            {"port": {"mac_address": port["mac_address"]}},
            "admin",
        )
        assert fault(taken, 409, "MacAddressInUse"), taken.text


async def test_names_and_descriptions(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        cases = [("/v2.0/networks", "network", {}), ("/v2.0/routers", "router", {})]
        cases += [("/v2.0/ports", "port", {"network_id": net["id"]})]
        cases += [("/v2.0/security-groups", "security_group", {})]
        for (path, key, base), attr, value in itertools.product(
            cases,
            ("name", "description"),
            ("x" * 256, "a\nb", "bell\x07", "\x1b[31mred", "nul\x00", 5, ["x"]),
        ):
            resp = await api.post("pA", path, {key: {**base, attr: value}})
            assert fault(resp, 400), (path, attr, value, resp.text)
        ok = await api.post("pA", "/v2.0/networks", {"network": {"name": "é" * 255}})
        assert ok.status_code == 201
        renamed = await api.put("pA", f"/v2.0/networks/{net['id']}", {"network": {"name": "a\tb"}})
        assert fault(renamed, 400)


async def test_references_must_be_uuids(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        for path, body in (
            ("/v2.0/ports", {"port": {"network_id": "not-a-uuid"}}),
            ("/v2.0/subnets", {"subnet": {"network_id": "x", "cidr": "10.0.0.0/24"}}),
            ("/v2.0/floatingips", {"floatingip": {"floating_network_id": "x"}}),
            ("/v2.0/ports", {"port": {"network_id": net["id"], "security_groups": ["x"]}}),
            ("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": 1}]}}),
        ):
            resp = await api.post("pA", path, body)
            assert fault(resp, 400), (path, body, resp.text)
        missing = await api.post("pA", "/v2.0/ports", {"port": {"network_id": str(uuid.uuid4())}})
        assert fault(missing, 404, "NetworkNotFound")
        # An id in the path that is no UUID is simply not found.
        assert fault(await api.get("pA", "/v2.0/ports/nope"), 404, "PortNotFound")


async def test_enums(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        for attrs in (
            {"binding:vnic_type": "bogus"},
            {"binding:vnic_type": "direct"},  # valid in Neutron, not plugged here
            {"binding:profile": "x"},
            {"allowed_address_pairs": [{"ip_address": "10.0.0.9"}]},
            {"allowed_address_pairs": "x"},
            {"extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400"}]},
            {"admin_state_up": "maybe"},
        ):
            resp = await api.post("pA", "/v2.0/ports", {"port": {"network_id": net["id"], **attrs}})
            assert fault(resp, 400), (attrs, resp.text)
        for attrs in ({"ip_version": 5}, {"ip_version": "x"}, {"enable_dhcp": "sometimes"}):
            body = {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", **attrs}}
            resp = await api.post("pA", "/v2.0/subnets", body)
            assert fault(resp, 400), (attrs, resp.text)
        rule = {"security_group_rule": {"direction": "sideways", "security_group_id": "x"}}
        assert (await api.post("pA", "/v2.0/security-group-rules", rule)).status_code == 400


async def _networks(api: Api, *names: str) -> list[dict[str, Any]]:
    return [await api.network("pA", name=name) for name in names]


async def test_list_parameters(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        nets = await _networks(api, "c", "a", "b", "d")
        other = await api.network("pB")

        async def listing(query: str, project: str = "pA") -> Any:
            return await api.get(project, f"/v2.0/networks?{query}")

        for query in ("limit=-1", "limit=x", "limit=1.5", "limit=%20"):
            resp = await listing(query)
            assert fault(resp, 400, "BadRequest"), (query, resp.text)
            assert "Limit must be an integer 0 or greater" in resp.text
        assert len((await listing("limit=0")).json()["networks"]) == 4
        for query, text in (
            ("sort_key=name", "The number of sort_keys and sort_dirs must be same"),
            ("sort_dir=asc", "The number of sort_keys and sort_dirs must be same"),
            ("sort_key=bogus&sort_dir=asc", "['bogus'] is invalid attribute for sort_keys"),
            ("sort_key=subnets&sort_dir=asc", "['subnets'] is invalid attribute for sort_keys"),
            ("sort_key=name&sort_dir=up", "['up'] is invalid value for sort_dirs"),
            ("bogus=1", "['bogus'] is invalid attribute for filtering"),
        ):
            resp = await listing(query)
            assert fault(resp, 400, "HTTPBadRequest") and text in resp.text, (query, resp.text)

        # An unknown marker, or another project's, is not found (with a limit, as Neutron
        # looks it up only when paging); without a limit it is ignored.
        for marker in (str(uuid.uuid4()), other["id"], "junk"):
            resp = await listing(f"limit=2&marker={marker}")
            assert fault(resp, 404, "NetworkNotFound"), resp.text
        assert len((await listing(f"marker={uuid.uuid4()}")).json()["networks"]) == 4

        # A marker filtered out still marks the place: the page starts after it.
        by_name = {n["name"]: n["id"] for n in nets}
        query = f"limit=5&sort_key=name&sort_dir=asc&marker={by_name['b']}&name=a&name=d"
        assert [n["name"] for n in (await listing(query)).json()["networks"]] == ["d"]
        query = f"limit=2&sort_key=name&sort_dir=desc&marker={by_name['c']}"
        assert [n["name"] for n in (await listing(query)).json()["networks"]] == ["b", "a"]
        two = await listing("sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc")
        assert [n["name"] for n in two.json()["networks"]] == ["d", "c", "b", "a"]

        fields = (await listing("fields=id&fields=name")).json()["networks"]
        assert all(set(n) == {"id", "name"} for n in fields)
        shown = await api.get("pA", f"/v2.0/networks/{nets[0]['id']}?fields=name")
        assert shown.json() == {"network": {"name": "c"}}
        assert fault_type(await api.get("pA", "/v2.0/ports?sort_key=mac_address")) == (
            "HTTPBadRequest"
        )


async def test_no_input_answers_a_server_error(tmp_path) -> None:
    """Wrong types in every attribute of every resource: each answers 4xx with Neutron's
    error body (a 500 here is a missing check)."""
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        port = await api.port("pA", net["id"])
        router = (await api.post("pA", "/v2.0/routers", {"router": {}})).json()["router"]
        junk: list[Any] = [None, 5, -1, 1.5, True, "x", "", [], ["x"], {}, {"a": 1}, "\x00"]
        resources = {
            "/v2.0/networks": (
                "network",
                {},
                ["name", "admin_state_up", "mtu", "shared", "port_security_enabled", "project_id"],
            ),
            "/v2.0/subnets": (
                "subnet",
                {"network_id": net["id"], "cidr": "10.1.0.0/24"},
                [
                    "cidr",
                    "gateway_ip",
                    "allocation_pools",
                    "dns_nameservers",
                    "host_routes",
                    "ip_version",
                    "enable_dhcp",
                    "network_id",
                ],
            ),
            "/v2.0/ports": (
                "port",
                {"network_id": net["id"]},
                [
                    "fixed_ips",
                    "security_groups",
                    "mac_address",
                    "device_id",
                    "device_owner",
                    "binding:vnic_type",
                    "network_id",
                ],
            ),
            "/v2.0/routers": ("router", {}, ["external_gateway_info", "admin_state_up", "routes"]),
            "/v2.0/floatingips": (
                "floatingip",
                {"floating_network_id": net["id"]},
                ["port_id", "fixed_ip_address", "floating_ip_address"],
            ),
            "/v2.0/security-groups": ("security_group", {}, ["name", "stateful"]),
        }
        updates = {
            "/v2.0/networks": net["id"],
            "/v2.0/subnets": sub["id"],
            "/v2.0/ports": port["id"],
            "/v2.0/routers": router["id"],
        }
        seen = 0
        for path, (key, base, attrs) in resources.items():
            for attr, value in itertools.product(attrs, junk):
                body = {key: {**base, attr: value}}
                answers = [await api.post("pA", path, body)]
                if path in updates:
                    answers.append(
                        await api.put("pA", f"{path}/{updates[path]}", {key: {attr: value}})
                    )
                for resp in answers:
                    seen += 1
                    assert resp.status_code < 500, (path, attr, value, resp.text)
                    if resp.status_code >= 400:
                        assert set(resp.json()["NeutronError"]) == {"type", "message", "detail"}
                # Whatever was made goes again, so the next body meets the same state.
                if answers[0].status_code == 201:
                    made = answers[0].json()[key]["id"]
                    assert (await api.delete("pA", f"{path}/{made}")).status_code == 204
        for query in ("limit=[]", "marker=%00", "fields=", "sort_key=&sort_dir=", "id=%ff"):
            for path in resources:
                resp = await api.get("pA", f"{path}?{query}")
                seen += 1
                assert resp.status_code < 500, (path, query, resp.text)
        assert seen > 600
