"""A member may not put a server on an external network that is not shared (Nova's
``network:attach_external_network``, admin only): a create and an ``os-interface`` attach
answer 403 ``ExternalNetworkAttachForbidden`` in Nova's words before anything is made;
a network the caller cannot see is Nova's ``NetworkNotFound``. compute-api with a real
network-api (the agents are fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, private_vhost

from common_rpc.audit import request_audit
from compute_svc.db.models import Claim, ServerPort


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Cloud]:
    with private_vhost() as url:
        async with cloud(tmp_path, url) as made:
            yield made


async def _network(c: Cloud, project: str, cidr: str, *roles: str, **attrs: Any) -> str:
    body = {"network": {"name": f"net-{cidr.split('.')[1]}", **attrs}}
    resp = await c.network.post(project, "/v2.0/networks", body, *roles)
    assert resp.status_code == 201, resp.text
    net_id: str = resp.json()["network"]["id"]
    subnet = {"subnet": {"network_id": net_id, "cidr": cidr, "enable_dhcp": False}}
    assert (await c.network.post(project, "/v2.0/subnets", subnet, *roles)).status_code == 201
    return net_id


def _forbidden(network_id: str) -> dict[str, Any]:
    message = f"It is not allowed to create an interface on external network {network_id}"
    return {"forbidden": {"code": 403, "message": message}}


async def _ports_on(c: Cloud, network_id: str) -> list[dict[str, Any]]:
    resp = await c.network.get("admin", f"/v2.0/ports?network_id={network_id}", *ADMIN)
    return [p for p in resp.json()["ports"] if p["device_owner"].startswith("compute:")]


async def _held_and_claimed(c: Cloud) -> tuple[list[str], list[str]]:
    from sqlalchemy import select

    async with c.api.app.state.runtime.sessions() as session:
        held = list(await session.scalars(select(ServerPort.port_id)))
        claims = list(await session.scalars(select(Claim.server_id)))
    return sorted(held), sorted(claims)


async def test_external_networks_are_refused_to_members_before_anything_is_made(
    c: Cloud,
) -> None:
    api = c.api
    flavor = await api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    images = {p: (await api.image(p, b"QFI\xfb" + b"\0" * 100))["id"] for p in ("p1", "admin")}
    external = await _network(c, "admin", "172.24.4.0/24", *ADMIN, **{"router:external": True})
    shared_ext = await _network(
        c, "admin", "172.25.4.0/24", *ADMIN, **{"router:external": True, "shared": True}
    )
    own = await _network(c, "p1", "10.31.0.0/24")
    theirs = await _network(c, "p2", "10.32.0.0/24")
    # A port on the external network that an admin made for p1 (network-svc lets it).
    body = {"port": {"network_id": external, "project_id": "p1", "name": "ext-port"}}
    resp = await c.network.post("admin", "/v2.0/ports", body, *ADMIN)
    assert resp.status_code == 201, resp.text
    ext_port = resp.json()["port"]["id"]

    def create(*networks: dict[str, str], project: str = "p1") -> dict[str, Any]:
        server = {"name": "s", "flavorRef": flavor["id"], "imageRef": images[project]}
        return {"server": server | {"networks": list(networks)}}

    # ---- server create
    for networks, network_id in (
        ([{"uuid": external}], external),
        ([{"uuid": own}, {"uuid": external}], external),
        ([{"port": ext_port}], external),
    ):
        resp = await api.post("p1", "/v2.1/servers", create(*networks))
        assert resp.status_code == 403, resp.text
        assert resp.json() == _forbidden(network_id)
    resp = await api.post("p1", "/v2.1/servers", create({"uuid": theirs}))
    assert resp.status_code == 400, resp.text
    message = f"Network {theirs} could not be found."
    assert resp.json() == {"badRequest": {"code": 400, "message": message}}

    # Nothing was made: no server, no claim, no quota used, no port, no port held.
    listed = await api.get("admin", "/v2.1/servers/detail?all_tenants=1", *ADMIN)
    assert listed.json()["servers"] == []
    limits = (await api.get("p1", "/v2.1/limits")).json()["limits"]["absolute"]
    assert (limits["totalInstancesUsed"], limits["totalCoresUsed"]) == (0, 0)
    assert await _ports_on(c, external) == []
    assert await _held_and_claimed(c) == ([], [])
    port = (await c.network.get("admin", f"/v2.0/ports/{ext_port}", *ADMIN)).json()["port"]
    assert port["device_id"] == ""

    # A shared external network is anyone's; an admin may use any external network.
    resp = await api.post("p1", "/v2.1/servers", create({"uuid": shared_ext}))
    assert resp.status_code == 202, resp.text
    on_shared = resp.json()["server"]["id"]
    resp = await api.post(
        "admin", "/v2.1/servers", create({"uuid": external}, project="admin"), *ADMIN
    )
    assert resp.status_code == 202, resp.text
    admins = resp.json()["server"]["id"]
    resp = await api.post("p1", "/v2.1/servers", create({"uuid": own}))
    assert resp.status_code == 202, resp.text
    mine = resp.json()["server"]["id"]
    for project, sid in (("p1", on_shared), ("admin", admins), ("p1", mine)):
        server = await c.wait_status(project, sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
    [admin_port] = await _ports_on(c, external)
    assert admin_port["device_id"] == admins

    # ---- os-interface attach, on an ACTIVE server of p1
    path = f"/v2.1/servers/{mine}/os-interface"
    actions = f"/v2.1/servers/{mine}/os-instance-actions"
    before = (await api.get("p1", actions)).json()
    held_before = await _held_and_claimed(c)
    for attachment in ({"net_id": external}, {"port_id": ext_port}):
        resp = await api.post("p1", path, {"interfaceAttachment": attachment})
        assert resp.status_code == 403, resp.text
        assert resp.json() == _forbidden(external)
    resp = await api.post("p1", path, {"interfaceAttachment": {"net_id": theirs}})
    assert resp.status_code == 404, resp.text
    message = f"Network {theirs} could not be found."
    assert resp.json() == {"itemNotFound": {"code": 404, "message": message}}

    # Nothing was made, held or recorded.
    assert (await api.get("p1", actions)).json() == before
    assert await _held_and_claimed(c) == held_before
    assert await _ports_on(c, external) == [admin_port]
    port = (await c.network.get("admin", f"/v2.0/ports/{ext_port}", *ADMIN)).json()["port"]
    assert port["device_id"] == ""
    attached = (await api.get("p1", path)).json()["interfaceAttachments"]
    assert [a["net_id"] for a in attached] == [own]
    rpc = api.app.state.runtime.rpc
    report = await request_audit(rpc, "compute", timeout=30)
    assert report.findings == [], report
    assert (report.checked["servers"], report.checked["domains"]) == (3, 3), report

    for project, sid in (("p1", on_shared), ("admin", admins), ("p1", mine)):
        roles = ADMIN if project == "admin" else ()
        assert (await api.delete(project, f"/v2.1/servers/{sid}", *roles)).status_code == 204
        await c.wait_gone(project, sid)
    # What `stackling audit` reports once they are gone: nothing left or leaked, in
    # compute (claims, guests) nor in network (ports, addresses, DHCP on the networks).
    for service in ("compute", "network"):
        report = await request_audit(rpc, service, timeout=30)
        assert report.findings == [], report
    # Only the port an admin made for p1 is left, unbound.
    assert (report.checked["networks"], report.checked["ports"]) == (4, 1), report
