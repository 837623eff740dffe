"""Network IP availabilities (admin): pool totals and used addresses per network and subnet."""

from __future__ import annotations

import ipaddress

from netapi_helpers import fault_type, network_api


async def test_totals_and_used_per_network_and_subnet(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA", name="n1")
        pools = [
            {"start": "10.0.0.10", "end": "10.0.0.19"},
            {"start": "10.0.0.30", "end": "10.0.0.34"},
        ]
        sub4 = await api.subnet(
            "pA", net["id"], "10.0.0.0/24", allocation_pools=pools, enable_dhcp=False
        )
        body = {
            "subnet": {
                "network_id": net["id"],
                "cidr": "2001:db8::/120",
                "ip_version": 6,
                "enable_dhcp": False,
            }
        }
        made = await api.post("pA", "/v2.0/subnets", body)
        assert made.status_code == 201, made.text
        sub6 = made.json()["subnet"]
        await api.port("pA", net["id"], fixed_ips=[{"subnet_id": sub4["id"]}])
        await api.port("pA", net["id"], fixed_ips=[{"subnet_id": sub4["id"]}])
        empty = await api.network("pB", name="n2")

        resp = await api.get("admin", f"/v2.0/network-ip-availabilities/{net['id']}", "admin")
        assert resp.status_code == 200, resp.text
        got = resp.json()["network_ip_availability"]
        assert got["network_id"] == net["id"] and got["network_name"] == "n1"
        assert got["project_id"] == got["tenant_id"] == "pA"
        per = {s["subnet_id"]: s for s in got["subnet_ip_availability"]}
        assert per[sub4["id"]] == {
            "subnet_id": sub4["id"],
            "subnet_name": sub4["name"],
            "cidr": "10.0.0.0/24",
            "ip_version": 4,
            "total_ips": 15,  # the pools' addresses, not the CIDR's
            "used_ips": 2,
        }
        six_total = sum(
            int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1
            for p in sub6["allocation_pools"]
        )
        assert six_total > 200  # most of the /120
        assert per[sub6["id"]]["total_ips"] == six_total and per[sub6["id"]]["used_ips"] == 0
        assert got["total_ips"] == 15 + six_total and got["used_ips"] == 2

        listed = await api.get("admin", "/v2.0/network-ip-availabilities", "admin")
        items = {i["network_id"]: i for i in listed.json()["network_ip_availabilities"]}
        assert set(items) == {net["id"], empty["id"]}
        assert (
            items[empty["id"]]["total_ips"] == 0
            and items[empty["id"]]["subnet_ip_availability"] == []
        )
        by_project = await api.get(
            "admin", "/v2.0/network-ip-availabilities?project_id=pB", "admin"
        )
        assert [i["network_id"] for i in by_project.json()["network_ip_availabilities"]] == [
            empty["id"]
        ]
        paged = await api.get("admin", "/v2.0/network-ip-availabilities?limit=1", "admin")
        page = paged.json()
        assert len(page["network_ip_availabilities"]) == 1
        (nxt,) = [x["href"] for x in page["network_ip_availabilities_links"] if x["rel"] == "next"]
        rest = (await api.http.get(nxt, headers=api.as_("admin", "admin"))).json()
        assert len(rest["network_ip_availabilities"]) == 1
        assert rest["network_ip_availabilities"] != page["network_ip_availabilities"]


async def test_non_admins_see_none_and_unknown_is_404(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        mine = await api.get("pA", "/v2.0/network-ip-availabilities")
        assert mine.status_code == 200 and mine.json() == {"network_ip_availabilities": []}
        for project, roles in (("pA", ("member",)), ("admin", ("admin",))):
            wanted = net["id"] if project == "pA" else "00000000-0000-0000-0000-000000000000"
            resp = await api.get(project, f"/v2.0/network-ip-availabilities/{wanted}", *roles)
            assert resp.status_code == 404 and fault_type(resp) == "NetworkNotFound"
        bad = await api.get("admin", "/v2.0/network-ip-availabilities?bogus=1", "admin")
        assert bad.status_code == 400
