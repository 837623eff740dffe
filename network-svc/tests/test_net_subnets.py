"""Subnets: defaults, pool and gateway validation, overlap inside one network only."""

from __future__ import annotations

from netapi_helpers import fault_type, network_api


async def test_defaults_and_network_lists_its_subnets(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24", name="s1")
        assert sub["gateway_ip"] == "10.0.0.1" and sub["enable_dhcp"] is True
        assert sub["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
        assert sub["dns_nameservers"] == [] and sub["host_routes"] == []
        shown = (await api.get("pA", f"/v2.0/networks/{net['id']}")).json()["network"]
        assert shown["subnets"] == [sub["id"]]
        none = await api.subnet("pA", net["id"], "10.1.0.0/29", gateway_ip=None)
        assert none["gateway_ip"] is None
        assert none["allocation_pools"] == [{"start": "10.1.0.1", "end": "10.1.0.6"}]
        mid = await api.subnet("pA", net["id"], "10.2.0.0/29", gateway_ip="10.2.0.3")
        assert mid["allocation_pools"] == [
            {"start": "10.2.0.1", "end": "10.2.0.2"},
            {"start": "10.2.0.4", "end": "10.2.0.6"},
        ]
        extra = await api.subnet(
            "pA",
            net["id"],
            "10.3.0.0/24",
            dns_nameservers=["8.8.8.8"],
            host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.3.0.254"}],
            allocation_pools=[{"start": "10.3.0.10", "end": "10.3.0.20"}],
        )
        assert extra["dns_nameservers"] == ["8.8.8.8"]
        assert extra["allocation_pools"] == [{"start": "10.3.0.10", "end": "10.3.0.20"}]


async def test_invalid_and_overlapping_cidrs_are_400(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        await api.subnet("pA", net["id"], "10.0.0.0/24")

        async def create(**attrs: object) -> int:
            body = {"subnet": {"network_id": net["id"], "ip_version": 4, **attrs}}
            resp = await api.post("pA", "/v2.0/subnets", body)
            return resp.status_code

        assert await create(cidr="10.0.0.0/16") == 400  # overlaps
        assert await create(cidr="10.0.0.128/25") == 400
        assert await create(cidr="not-a-cidr") == 400
        assert await create(cidr="fd00::/64") == 400  # wrong version
        pools = [{"start": "10.5.0.1", "end": "10.5.0.9"}]
        assert await create(cidr="10.5.0.0/24", allocation_pools=pools) == 409  # has gateway
        outside = [{"start": "10.6.0.10", "end": "10.7.0.9"}]
        assert await create(cidr="10.6.0.0/24", allocation_pools=outside) == 400
        assert await create(cidr="10.8.0.0/24", gateway_ip="10.9.0.1") == 400
        bad = await api.post("pA", "/v2.0/subnets", {"subnet": {"cidr": "10.4.0.0/24"}})
        assert bad.status_code == 400 and fault_type(bad) == "HTTPBadRequest"
        # Host bits are cleared, as Neutron turns the CIDR "into a proper subnet".
        proper = await api.subnet("pA", net["id"], "10.9.0.1/24")
        assert proper["cidr"] == "10.9.0.0/24" and proper["gateway_ip"] == "10.9.0.1"
        other = await api.network("pB")
        reused = await api.subnet("pB", other["id"], "10.0.0.0/24")
        assert reused["cidr"] == "10.0.0.0/24"


async def test_subnet_scoping_update_and_delete(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        path = f"/v2.0/subnets/{sub['id']}"
        hidden = await api.get("pB", path)
        assert hidden.status_code == 404 and fault_type(hidden) == "SubnetNotFound"
        on_other = await api.post(
            "pB", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24"}}
        )
        assert on_other.status_code == 404
        updated = await api.put("pA", path, {"subnet": {"name": "renamed", "enable_dhcp": False}})
        assert updated.json()["subnet"]["enable_dhcp"] is False
        port = await api.port("pA", net["id"])
        in_use = await api.delete("pA", path)
        assert in_use.status_code == 409 and fault_type(in_use) == "SubnetInUse"
        await api.delete("pA", f"/v2.0/ports/{port['id']}")
        assert (await api.delete("pA", path)).status_code == 204


async def test_dhcp_port_holds_the_server_address(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/29")  # .2-.6
        dhcp_path = f"/v2.0/ports?device_owner=network:dhcp&network_id={net['id']}"
        [dhcp] = (await api.get("pA", dhcp_path)).json()["ports"]
        assert dhcp["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
        assert dhcp["device_id"] == f"dhcp-{net['id']}" and dhcp["status"] == "ACTIVE"

        # The pool's other four go to guests; the DHCP address is never handed out.
        guests = [await api.port("pA", net["id"]) for _ in range(4)]
        assert {g["fixed_ips"][0]["ip_address"] for g in guests} == {
            "10.0.0.3",
            "10.0.0.4",
            "10.0.0.5",
            "10.0.0.6",
        }
        full = await api.post("pA", "/v2.0/ports", {"port": {"network_id": net["id"]}})
        assert full.status_code == 409 and fault_type(full) == "IpAddressGenerationFailure"

        # Nobody deletes it or moves its address by hand.
        path = f"/v2.0/ports/{dhcp['id']}"
        assert (await api.delete("pA", path)).status_code == 409
        assert (await api.delete("pA", path, "admin")).status_code == 409
        moved = {"port": {"fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.0.0.6"}]}}
        assert (await api.put("pA", path, moved)).status_code == 409

        # A second DHCP subnet gives the same port an address there too.
        sub2 = await api.subnet("pA", net["id"], "10.0.1.0/24")
        [dhcp] = (await api.get("pA", dhcp_path)).json()["ports"]
        assert {ip["ip_address"] for ip in dhcp["fixed_ips"]} == {"10.0.0.2", "10.0.1.2"}

        # DHCP off releases the address; on again takes the first free one back.
        off = await api.put("pA", f"/v2.0/subnets/{sub2['id']}", {"subnet": {"enable_dhcp": False}})
        assert off.status_code == 200
        [dhcp] = (await api.get("pA", dhcp_path)).json()["ports"]
        assert [ip["subnet_id"] for ip in dhcp["fixed_ips"]] == [sub["id"]]
        on = await api.put("pA", f"/v2.0/subnets/{sub2['id']}", {"subnet": {"enable_dhcp": True}})
        assert on.status_code == 200

        # The DHCP port does not hold its subnets or network: they delete with it.
        assert (await api.delete("pA", f"/v2.0/subnets/{sub2['id']}")).status_code == 204
        [dhcp] = (await api.get("pA", dhcp_path)).json()["ports"]
        assert [ip["subnet_id"] for ip in dhcp["fixed_ips"]] == [sub["id"]]
        for guest in guests:
            assert (await api.delete("pA", f"/v2.0/ports/{guest['id']}")).status_code == 204
        assert (await api.delete("pA", f"/v2.0/networks/{net['id']}")).status_code == 204
        assert (await api.get("pA", "/v2.0/ports")).json()["ports"] == []
        assert (await api.get("pA", f"/v2.0/subnets/{sub['id']}")).status_code == 404


async def test_external_network_subnets_follow_neutron_visibility(tmp_path) -> None:
    """Another project's non-shared external network is visible; its subnets are not
    (listed, shown, filtered, by ``fields``), and nothing else names them for a member."""
    async with network_api(tmp_path, default_network_type="local") as api:
        body = {"network": {"name": "public", "router:external": True}}
        ext = (await api.post("admin", "/v2.0/networks", body, "admin")).json()["network"]
        ext_sub = await api.subnet("admin", ext["id"], "198.51.100.0/24", enable_dhcp=False)
        body = {"network": {"name": "shared", "shared": True}}
        shared = (await api.post("admin", "/v2.0/networks", body, "admin")).json()["network"]
        shared_sub = await api.subnet("admin", shared["id"], "10.50.0.0/24", enable_dhcp=False)
        own_net = await api.network("pB")
        own_sub = await api.subnet("pB", own_net["id"], "10.60.0.0/24", enable_dhcp=False)

        # The network itself is visible to every project (with its subnets' ids, as Neutron).
        networks = (await api.get("pB", "/v2.0/networks?router:external=True")).json()
        assert [n["id"] for n in networks["networks"]] == [ext["id"]]
        assert networks["networks"][0]["subnets"] == [ext_sub["id"]]
        # Its subnets are not: not listed, not by filter, not shown, not with fields.
        listed = (await api.get("pB", "/v2.0/subnets")).json()["subnets"]
        assert {s["id"] for s in listed} == {shared_sub["id"], own_sub["id"]}
        for query in (f"network_id={ext['id']}", f"id={ext_sub['id']}", "cidr=198.51.100.0/24"):
            assert (await api.get("pB", f"/v2.0/subnets?{query}")).json()["subnets"] == []
        for path in (f"/v2.0/subnets/{ext_sub['id']}", f"/v2.0/subnets/{ext_sub['id']}?fields=id"):
            hidden = await api.get("pB", path)
            assert hidden.status_code == 404 and fault_type(hidden) == "SubnetNotFound"
        changed = await api.put("pB", f"/v2.0/subnets/{ext_sub['id']}", {"subnet": {"name": "x"}})
        assert changed.status_code == 404
        assert (await api.delete("pB", f"/v2.0/subnets/{ext_sub['id']}")).status_code == 404
        # The owner (admin) sees them; the shared network's subnet stays visible to all.
        admin_list = (await api.get("admin", "/v2.0/subnets", "admin")).json()["subnets"]
        assert ext_sub["id"] in {s["id"] for s in admin_list}
        shown = await api.get("pB", f"/v2.0/subnets/{shared_sub['id']}")
        assert shown.status_code == 200

        # No way around it: no port on it, no router interface on its subnet, no chosen
        # external address for a gateway or a floating IP (Neutron's policy: 403).
        port = await api.post("pB", "/v2.0/ports", {"port": {"network_id": ext["id"]}})
        assert port.status_code == 403 and fault_type(port) == "PolicyNotAuthorized"
        fixed = {"network_id": ext["id"], "fixed_ips": [{"subnet_id": ext_sub["id"]}]}
        assert (await api.post("pB", "/v2.0/ports", {"port": fixed})).status_code == 403
        router = (await api.post("pB", "/v2.0/routers", {"router": {"name": "r"}})).json()
        path = f"/v2.0/routers/{router['router']['id']}"
        added = await api.put("pB", f"{path}/add_router_interface", {"subnet_id": ext_sub["id"]})
        assert added.status_code == 404 and fault_type(added) == "SubnetNotFound"
        picked = {"network_id": ext["id"], "external_fixed_ips": [{"subnet_id": ext_sub["id"]}]}
        chosen = await api.put("pB", path, {"router": {"external_gateway_info": picked}})
        assert chosen.status_code == 403 and fault_type(chosen) == "PolicyNotAuthorized"
        address = {"floating_network_id": ext["id"], "floating_ip_address": "198.51.100.9"}
        fip = await api.post("pB", "/v2.0/floatingips", {"floatingip": address})
        assert fip.status_code == 403
        # What a member may do still works: a gateway and a floating IP from the pool.
        gateway = {"external_gateway_info": {"network_id": ext["id"]}}
        assert (await api.put("pB", path, {"router": gateway})).status_code == 200
        body = {"floatingip": {"floating_network_id": ext["id"]}}
        assert (await api.post("pB", "/v2.0/floatingips", body)).status_code == 201
        # The ports these made are not the member's: none is listed to it.
        ports = (await api.get("pB", f"/v2.0/ports?network_id={ext['id']}")).json()["ports"]
        assert ports == []
        # An admin may still plug into it.
        admin_port = {"port": {"network_id": ext["id"]}}
        assert (await api.post("admin", "/v2.0/ports", admin_port, "admin")).status_code == 201
