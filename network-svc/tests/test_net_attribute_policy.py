"""Who may set which attribute (docs/attribute-policy.md), through the API as a member and
as an admin; and what a member made, the member can delete."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from netapi_helpers import Api, fault_type, network_api
from test_net_ipam_concurrency import temp_postgres

from network_svc.domain import desired
from network_svc.domain.common import transaction


@pytest.fixture(name="db", params=["sqlite", "postgresql"])
async def db_fixture(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The default SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield {"default_network_type": "local"}
        return
    async with temp_postgres() as url:
        yield {"default_network_type": "local", "db_url": url}


def denied(resp: Any, message: str) -> bool:
    body = resp.json()["NeutronError"]
    assert set(body) == {"type", "message", "detail"}, body
    return (
        resp.status_code == 403
        and body["type"] == "PolicyNotAuthorized"
        and (body["message"] == message)
    )


async def _shared(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """An admin project's shared network with a subnet."""
    resp = await api.post("adm", "/v2.0/networks", {"network": {"shared": True}}, "admin")
    assert resp.status_code == 201, resp.text
    net = resp.json()["network"]
    body = {"subnet": {"network_id": net["id"], "cidr": "10.5.0.0/24", "ip_version": 4}}
    sub = await api.post("adm", "/v2.0/subnets", body, "admin")
    assert sub.status_code == 201, sub.text
    return net, sub.json()["subnet"]


async def test_port_attributes_on_a_shared_network_one_does_not_own(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        net, sub = await _shared(api)

        async def create(**attrs: Any) -> Any:
            return await api.post("pB", "/v2.0/ports", {"port": {"network_id": net["id"], **attrs}})

        for owner in ("network:dhcp", "network:router_interface", "network:anything"):
            resp = await create(device_owner=owner, device_id="x")
            assert denied(
                resp, "(rule:create_port and rule:create_port:device_owner) is disallowed by policy"
            ), resp.text
        refused = {
            "mac_address": ("fa:16:3e:11:22:33", "rule:create_port:mac_address"),
            "port_security_enabled": (False, "rule:create_port:port_security_enabled"),
            "allowed_address_pairs": ([], "rule:create_port:allowed_address_pairs"),
            "binding:host_id": ("host1", "rule:create_port:binding:host_id"),
            "binding:profile": ({}, "rule:create_port:binding:profile"),
        }
        for key, (value, rule) in refused.items():
            resp = await create(**{key: value})
            assert denied(resp, f"(rule:create_port and {rule}) is disallowed by policy"), key
        by_address = await create(fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.5.0.9"}])
        assert denied(
            by_address,
            "(rule:create_port and rule:create_port:fixed_ips and "
            "rule:create_port:fixed_ips:ip_address) is disallowed by policy",
        ), by_address.text

        # What a member may do there: a server's port, a subnet of its choice, vnic normal.
        ok = await create(
            device_owner="compute:nova",
            fixed_ips=[{"subnet_id": sub["id"]}],
            **{"binding:vnic_type": "normal"},
        )
        assert ok.status_code == 201, ok.text
        port = ok.json()["port"]
        for attrs, rule in (
            ({"device_owner": "network:dhcp"}, "device_owner"),
            ({"fixed_ips": [{"ip_address": "10.5.0.10"}]}, "fixed_ips:ip_address"),
            ({"mac_address": "fa:16:3e:11:22:34"}, "mac_address"),
            ({"port_security_enabled": True}, "port_security_enabled"),
        ):
            resp = await api.put("pB", f"/v2.0/ports/{port['id']}", {"port": attrs})
            assert resp.status_code == 403 and f"rule:update_port:{rule})" in resp.text, resp.text
        moved = await api.put("pB", f"/v2.0/ports/{port['id']}", {"port": {"network_id": "x"}})
        assert moved.status_code == 400 and "read-only attribute network_id" in moved.text

        # The network's owner and an admin may.
        for project, roles in (("adm", ("admin",)), ("adm", ("member",))):
            body = {"port": {"network_id": net["id"], "device_owner": "network:dhcp"}}
            resp = await api.post(project, "/v2.0/ports", body, *roles)
            assert resp.status_code == 201, resp.text
        admin_mac = await api.put(
            "adm",
            f"/v2.0/ports/{port['id']}",
            {"port": {"mac_address": "fa:16:3e:aa:bb:cc"}},
            "admin",
        )
        assert admin_mac.status_code == 200 and admin_mac.json()["port"]["mac_address"] == (
            "fa:16:3e:aa:bb:cc"
        )


async def test_port_attributes_on_ones_own_network(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        port = await api.port(
            "pA",
            net["id"],
            mac_address="fa:16:3e:00:00:07",
            fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.7"}],
            port_security_enabled=False,
            security_groups=[],
            device_owner="network:router_interface",
            allowed_address_pairs=[],
        )
        assert port["mac_address"] == "fa:16:3e:00:00:07"
        # A MAC changes by an admin only (Neutron's update_port:mac_address), even here.
        resp = await api.put(
            "pA", f"/v2.0/ports/{port['id']}", {"port": {"mac_address": "fa:16:3e:00:00:08"}}
        )
        assert denied(
            resp, "(rule:update_port and rule:update_port:mac_address) is disallowed by policy"
        )
        # Another project's private network stays hidden.
        hidden = await api.post("pB", "/v2.0/ports", {"port": {"network_id": net["id"]}})
        assert hidden.status_code == 404 and fault_type(hidden) == "NetworkNotFound"
        # A binding host stays an admin's.
        host = await api.put("pA", f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h"}})
        assert host.status_code == 403


async def test_network_attributes_are_admin_only(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        for attrs, rule in (
            ({"shared": True}, "shared"),
            ({"router:external": False}, "router:external"),
            ({"provider:network_type": "vxlan"}, "provider:network_type"),
            ({"provider:physical_network": "physnet1"}, "provider:physical_network"),
            ({"provider:segmentation_id": 7}, "provider:segmentation_id"),
        ):
            resp = await api.post("pA", "/v2.0/networks", {"network": attrs})
            assert denied(
                resp,
                f"(rule:create_network and rule:create_network:{rule}) is disallowed by policy",
            ), resp.text
        # Neutron checks a created attribute only when it differs from its default.
        plain = await api.post("pA", "/v2.0/networks", {"network": {"shared": False}})
        assert plain.status_code == 201
        net_id = plain.json()["network"]["id"]
        update = await api.put("pA", f"/v2.0/networks/{net_id}", {"network": {"shared": False}})
        assert denied(
            update, "(rule:update_network and rule:update_network:shared) is disallowed by policy"
        )
        made = await api.post("adm", "/v2.0/networks", {"network": {"shared": True}}, "admin")
        assert made.status_code == 201 and made.json()["network"]["shared"] is True


async def test_subnet_on_another_projects_network(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        shared, _ = await _shared(api)
        private = await api.network("pA")
        body = {"subnet": {"network_id": shared["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}
        resp = await api.post("pB", "/v2.0/subnets", body)
        assert denied(resp, "rule:create_subnet is disallowed by policy")
        body["subnet"]["network_id"] = private["id"]
        resp = await api.post("pB", "/v2.0/subnets", body)
        assert resp.status_code == 404 and fault_type(resp) == "NetworkNotFound"
        resp = await api.post("pB", "/v2.0/subnets", body, "admin")
        assert resp.status_code == 201


async def test_router_external_fixed_ips_are_admin_only(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        ext = (
            await api.post("adm", "/v2.0/networks", {"network": {"router:external": True}}, "admin")
        ).json()["network"]
        body = {"subnet": {"network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4}}
        assert (await api.post("adm", "/v2.0/subnets", body, "admin")).status_code == 201
        info = {"network_id": ext["id"], "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}
        resp = await api.post("pA", "/v2.0/routers", {"router": {"external_gateway_info": info}})
        assert denied(
            resp,
            "(rule:create_router and rule:create_router:external_gateway_info and "
            "rule:create_router:external_gateway_info:external_fixed_ips) is disallowed by policy",
        ), resp.text
        made = await api.post(
            "pA", "/v2.0/routers", {"router": {"external_gateway_info": info}}, "admin"
        )
        assert made.status_code == 201, made.text
        gateway = made.json()["router"]["external_gateway_info"]
        assert gateway["external_fixed_ips"][0]["ip_address"] == "203.0.113.50"


async def test_a_member_deletes_every_port_it_made_and_then_its_network(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        net = await api.network("pA")
        # Made before the subnet: the member's network:dhcp port is no DHCP server.
        own_dhcp = await api.port("pA", net["id"], device_owner="network:dhcp", device_id="d")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        router = (await api.post("pA", "/v2.0/routers", {"router": {"name": "r"}})).json()
        owners = {
            "network:router_interface": router["router"]["id"],
            "network:router_gateway": router["router"]["id"],
            "network:floatingip": str(uuid.uuid4()),
            "network:dhcp": f"dhcp-{net['id']}",
            "network:whatever": "",
            "compute:nova": "server-1",
        }
        made = [
            await api.port("pA", net["id"], device_owner=owner, device_id=device)
            for owner, device in owners.items()
        ]
        listed = await api.get(
            "pA", f"/v2.0/ports?device_owner=network:dhcp&network_id={net['id']}"
        )
        dhcp_ports = listed.json()["ports"]
        server = [p for p in dhcp_ports if p["id"] not in {own_dhcp["id"], made[3]["id"]}]
        assert len(server) == 1 and server[0]["fixed_ips"][0]["ip_address"] == "10.0.0.2"
        refused = await api.delete("pA", f"/v2.0/ports/{server[0]['id']}")
        assert refused.status_code == 409 and fault_type(refused) == "ServicePortInUse"
        # A real router leg is the router's until the interface is removed.
        leg = await api.put(
            "pA",
            f"/v2.0/routers/{router['router']['id']}/add_router_interface",
            {"subnet_id": sub["id"]},
        )
        leg_port = leg.json()["port_id"]
        assert (await api.delete("pA", f"/v2.0/ports/{leg_port}")).status_code == 409
        moved = await api.put("pA", f"/v2.0/ports/{leg_port}", {"port": {"device_owner": ""}})
        assert moved.status_code == 409 and fault_type(moved) == "PortInUse"

        for port in made[:3] + made[4:]:
            resp = await api.delete("pA", f"/v2.0/ports/{port['id']}")
            assert resp.status_code == 204, (port["device_owner"], resp.text)
        in_use = await api.delete("pA", f"/v2.0/networks/{net['id']}")
        assert in_use.status_code == 409 and fault_type(in_use) == "NetworkInUse"
        removed = await api.put(
            "pA",
            f"/v2.0/routers/{router['router']['id']}/remove_router_interface",
            {"subnet_id": sub["id"]},
        )
        assert removed.status_code == 200, removed.text
        # Its DHCP ports (the cloud's and the two it made) go with the network.
        gone = await api.delete("pA", f"/v2.0/networks/{net['id']}")
        assert gone.status_code == 204, gone.text
        left = (await api.get("pA", "/v2.0/ports")).json()["ports"]
        assert left == []
        quota = await api.get("pA", "/v2.0/quotas/pA/details")
        assert quota.json()["quota"]["port"]["used"] == 0


async def test_a_port_naming_a_router_is_no_leg_of_it(tmp_path) -> None:
    """Only a router's own legs are placed on its host (the hosts' tunnel entries): a
    member's port that only says network:router_interface and the router's id is not."""
    async with network_api(tmp_path, default_network_type="local", l3_host="h-l3") as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        router = (await api.post("pA", "/v2.0/routers", {"router": {}})).json()["router"]
        fake = await api.port(
            "pA", net["id"], device_owner="network:router_interface", device_id=router["id"]
        )
        leg = await api.put(
            "pA", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}
        )
        async with transaction(api.app.state.deps.sessions) as session:
            hosts = await desired.port_hosts(session, net["id"])
        placed = {port_id for port_id, _mac in hosts.get("h-l3", [])}
        assert leg.json()["port_id"] in placed and fake["id"] not in placed
