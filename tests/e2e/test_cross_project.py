"""Through the gateway, a project never sees another's resources: 404, not 403.

Project A's member creates a network, a subnet and a port with the real network-api;
project B's member can neither list, read, change nor delete any of them, while A's
reader can read but not change them, and the openstacksdk as A sees them all.
"""

from __future__ import annotations

import httpx
import openstack
from stack import Callers, Stack


def test_project_b_gets_404_for_project_a_resources(live_stack: Stack, callers: Callers) -> None:
    base = f"{live_stack.url('gateway')}/network/v2.0"
    with httpx.Client(base_url=base, timeout=10) as http:
        a = callers.member_a.headers
        net = http.post("/networks", json={"network": {"name": "a-net"}}, headers=a)
        assert net.status_code == 201, net.text
        net_id = net.json()["network"]["id"]
        subnet = http.post(
            "/subnets",
            json={"subnet": {"network_id": net_id, "cidr": "10.9.0.0/24", "ip_version": 4}},
            headers=a,
        )
        assert subnet.status_code == 201, subnet.text
        port = http.post("/ports", json={"port": {"network_id": net_id}}, headers=a)
        assert port.status_code == 201, port.text
        resources = {
            "networks": net_id,
            "subnets": subnet.json()["subnet"]["id"],
            "ports": port.json()["port"]["id"],
        }

        b = callers.member_b.headers
        for collection, rid in resources.items():
            listed = http.get(f"/{collection}", headers=b).json()[collection]
            assert rid not in {item["id"] for item in listed}
            assert http.get(f"/{collection}/{rid}", headers=b).status_code == 404
            update = {collection[:-1]: {"name": "taken"}}
            assert http.put(f"/{collection}/{rid}", json=update, headers=b).status_code == 404
            assert http.delete(f"/{collection}/{rid}", headers=b).status_code == 404
        assert (
            http.post("/ports", json={"port": {"network_id": net_id}}, headers=b).status_code == 404
        )

        reader = callers.reader_a.headers
        assert http.get(f"/networks/{net_id}", headers=reader).status_code == 200
        assert (
            http.put(
                f"/networks/{net_id}", json={"network": {"name": "x"}}, headers=reader
            ).status_code
            == 403
        )

    conn = openstack.connect(
        auth_url=f"{live_stack.url('gateway')}/identity/v3",
        username=callers.member_a.name,
        password=callers.member_a.password,
        project_id=callers.project_a,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    try:
        assert {n.id for n in conn.network.networks()} >= {net_id}
        assert conn.network.get_port(resources["ports"]).network_id == net_id
    finally:
        conn.close()

    with httpx.Client(base_url=base, timeout=10) as http:
        a = callers.member_a.headers
        assert http.delete(f"/ports/{resources['ports']}", headers=a).status_code == 204
        assert http.delete(f"/subnets/{resources['subnets']}", headers=a).status_code == 204
        assert http.delete(f"/networks/{net_id}", headers=a).status_code == 204
