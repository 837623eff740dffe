"""Ports: MACs, fixed IPs, filters and paging, updates, scoping, address release."""

from __future__ import annotations

from netapi_helpers import fault_type, network_api


async def test_port_shape_allocation_and_default_group(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        port = await api.port("pA", net["id"], name="p1", device_id="vm1")
        assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
        assert port["project_id"] == port["tenant_id"] == "pA"
        [fixed] = port["fixed_ips"]
        assert fixed["subnet_id"] == sub["id"] and fixed["ip_address"] != "10.0.0.1"
        groups = (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
        assert port["security_groups"] == [groups[0]["id"]] and groups[0]["name"] == "default"
        assert "binding:host_id" not in port and port["port_security_enabled"] is True
        admin_view = (await api.get("x", f"/v2.0/ports/{port['id']}", "admin")).json()["port"]
        assert admin_view["binding:host_id"] == ""
        bare = await api.port("pA", net["id"], security_groups=[])
        assert bare["security_groups"] == []


async def test_requested_addresses_are_checked(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
        wanted = await api.port("pA", net["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
        assert wanted["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.50"}]

        async def create(fixed_ips: list[dict[str, str]]) -> object:
            body = {"port": {"network_id": net["id"], "fixed_ips": fixed_ips}}
            return await api.post("pA", "/v2.0/ports", body)

        taken = await create([{"subnet_id": sub["id"], "ip_address": "10.0.0.50"}])
        assert taken.status_code == 409 and fault_type(taken) == "IpAddressAlreadyAllocated"
        elsewhere = await create([{"ip_address": "10.9.0.5"}])
        assert elsewhere.status_code == 400 and fault_type(elsewhere) == "InvalidIpForNetwork"
        outside = await create([{"subnet_id": sub["id"], "ip_address": "10.0.1.5"}])
        assert outside.status_code == 400 and fault_type(outside) == "InvalidIpForSubnet"
        assert (await create([{"subnet_id": "nope"}])).status_code == 400
        for address in ("10.0.0.0", "10.0.0.255"):  # network and broadcast: never a port's
            assert (
                await create([{"subnet_id": sub["id"], "ip_address": address}])
            ).status_code == 400
        # The gateway address may be taken (as in Neutron: a port made to be a router's
        # interface); a router then cannot take it by subnet.
        gateway = await create([{"ip_address": "10.0.0.1"}])
        assert gateway.status_code == 201
        router = (await api.post("pA", "/v2.0/routers", {"router": {"name": "r"}})).json()
        added = await api.put(
            "pA",
            f"/v2.0/routers/{router['router']['id']}/add_router_interface",
            {"subnet_id": sub["id"]},
        )
        assert added.status_code == 409 and fault_type(added) == "IpAddressAlreadyAllocated"
        by_port = await api.put(
            "pA",
            f"/v2.0/routers/{router['router']['id']}/add_router_interface",
            {"port_id": gateway.json()["port"]["id"]},
        )
        assert by_port.status_code == 200, by_port.text
        await api.delete("pA", f"/v2.0/ports/{wanted['id']}")
        again = await create([{"ip_address": "10.0.0.50"}])
        assert again.status_code == 201  # released with the port


async def test_filters_paging_and_updates(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        # .200 is outside the pool, so no random allocation can have taken it first
        pool = [{"start": "10.0.0.2", "end": "10.0.0.100"}]
        sub = await api.subnet(
            "pA", net["id"], "10.0.0.0/24", allocation_pools=pool, enable_dhcp=False
        )
        ports = [
            await api.port("pA", net["id"], name=f"p{i}", device_id=f"vm{i % 2}") for i in range(5)
        ]
        by_device = (await api.get("pA", "/v2.0/ports?device_id=vm1")).json()["ports"]
        assert {p["name"] for p in by_device} == {"p1", "p3"}
        ip = ports[2]["fixed_ips"][0]["ip_address"]
        by_ip = (await api.get("pA", f"/v2.0/ports?fixed_ips=ip_address%3D{ip}")).json()["ports"]
        assert [p["id"] for p in by_ip] == [ports[2]["id"]]
        by_subnet = await api.get("pA", f"/v2.0/ports?fixed_ips=subnet_id%3D{sub['id']}")
        assert len(by_subnet.json()["ports"]) == 5
        by_name = (await api.get("pA", "/v2.0/ports?name=p4&fields=id&fields=name")).json()
        assert by_name["ports"] == [{"id": ports[4]["id"], "name": "p4"}]
        seen: list[str] = []
        url = "/v2.0/ports?limit=2&sort_key=name&sort_dir=desc"
        while url:
            page = (await api.http.get(url, headers=api.as_("pA"))).json()
            seen += [p["name"] for p in page["ports"]]
            nxt = [link["href"] for link in page.get("ports_links", []) if link["rel"] == "next"]
            url = nxt[0] if nxt else ""
        assert seen == ["p4", "p3", "p2", "p1", "p0"]
        path = f"/v2.0/ports/{ports[0]['id']}"
        body = {
            "port": {
                "name": "renamed",
                "device_id": "vm9",
                "device_owner": "compute:nova",
                "admin_state_up": False,
                "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.0.0.200"}],
            }
        }
        updated = (await api.put("pA", path, body)).json()["port"]
        assert updated["name"] == "renamed" and updated["admin_state_up"] is False
        assert updated["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.200"}]
        old_ip = ports[0]["fixed_ips"][0]["ip_address"]
        reuse = await api.port("pA", net["id"], fixed_ips=[{"ip_address": old_ip}])
        assert reuse["fixed_ips"][0]["ip_address"] == old_ip
        cleared = (await api.put("pA", path, {"port": {"security_groups": []}})).json()["port"]
        assert cleared["security_groups"] == []


async def test_cross_project_and_admin_only_attributes(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        await api.subnet("pA", net["id"], "10.0.0.0/24")
        port = await api.port("pA", net["id"])
        path = f"/v2.0/ports/{port['id']}"
        hidden = await api.get("pB", path)
        assert hidden.status_code == 404 and fault_type(hidden) == "PortNotFound"
        assert (await api.put("pB", path, {"port": {"name": "x"}})).status_code == 404
        assert (await api.delete("pB", path)).status_code == 404
        assert (await api.get("pB", "/v2.0/ports")).json()["ports"] == []
        on_private = await api.post("pB", "/v2.0/ports", {"port": {"network_id": net["id"]}})
        assert on_private.status_code == 404 and fault_type(on_private) == "NetworkNotFound"
        host = await api.put("pA", path, {"port": {"binding:host_id": "cn1"}})
        assert host.status_code == 403
        bound = await api.put("pA", path, {"port": {"binding:host_id": "cn1"}}, "admin")
        assert bound.json()["port"]["binding:host_id"] == "cn1"
        shared = await api.post(
            "pA", "/v2.0/networks", {"network": {"name": "s", "shared": True}}, "admin"
        )
        shared_id = shared.json()["network"]["id"]
        insecure = {"port": {"network_id": shared_id, "port_security_enabled": False}}
        assert (await api.post("pB", "/v2.0/ports", insecure)).status_code == 403
        owner = await api.post("pA", "/v2.0/ports", insecure)
        assert owner.status_code == 201 and owner.json()["port"]["security_groups"] == []
        assert (await api.get("pB", path)).status_code == 404


async def test_bulk_create_and_idempotency_key(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        # 5 addresses, no DHCP port holding one
        await api.subnet("pA", net["id"], "10.0.0.0/29", enable_dhcp=False)
        two = {"ports": [{"network_id": net["id"], "name": "a"}, {"network_id": net["id"]}]}
        bulk = await api.post("pA", "/v2.0/ports", two)
        assert bulk.status_code == 201 and len(bulk.json()["ports"]) == 2
        four = {"ports": [{"network_id": net["id"]}] * 4}
        assert (await api.post("pA", "/v2.0/ports", four)).status_code == 409
        assert len((await api.get("pA", "/v2.0/ports")).json()["ports"]) == 2  # none kept
        headers = api.as_("pA") | {"Idempotency-Key": "create-port-1"}
        body = {"port": {"network_id": net["id"], "name": "once"}}
        first = await api.http.post("/v2.0/ports", json=body, headers=headers)
        again = await api.http.post("/v2.0/ports", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json()["port"]["id"] == again.json()["port"]["id"]
        assert len((await api.get("pA", "/v2.0/ports?name=once")).json()["ports"]) == 1
