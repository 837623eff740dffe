"""Clients discover every service's versions through the gateway, without a token.

The links in the documents point at the gateway (the services build them from the
forwarded host and prefix), so openstacksdk's version discovery lands where it should.
"""

from __future__ import annotations

import httpx
import openstack
from stack import Callers, Stack


def test_version_documents_through_the_gateway(live_stack: Stack, callers: Callers) -> None:
    gw = live_stack.url("gateway")
    with httpx.Client(base_url=gw, timeout=10) as http:
        compute = http.get("/compute/v2.1")
        assert compute.status_code == 200, compute.text
        assert compute.json()["version"]["links"][0]["href"] == f"{gw}/compute/v2.1/"
        roots = http.get("/compute/").json()["versions"]
        assert [v["id"] for v in roots] == ["v2.0", "v2.1"]
        volume = http.get("/volume/v3/").json()["versions"][0]
        assert (volume["id"], volume["links"][0]["href"]) == ("v3.0", f"{gw}/volume/v3/")
        # Cinder's root: 300 Multiple Choices, with the media types of each version.
        volume_root = http.get("/volume/")
        assert volume_root.status_code == 300, volume_root.text
        [listed] = volume_root.json()["versions"]
        assert listed["media-types"][0]["type"] == "application/vnd.openstack.volume+json;version=3"
        network = http.get("/network/").json()["versions"][0]
        assert network["links"][0]["href"] == f"{gw}/network/v2.0/"
        image = http.get("/image")
        assert image.status_code == 300
        assert image.json()["versions"][0]["links"][0]["href"] == f"{gw}/image/v2/"

    conn = openstack.connect(
        auth_url=f"{gw}/identity/v3",
        username=callers.member_a.name,
        password=callers.member_a.password,
        project_id=callers.project_a,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    try:
        for service_type, major in (("compute", 2), ("block-storage", 3), ("image", 2)):
            data = conn.session.get_endpoint_data(service_type=service_type, interface="public")
            assert data is not None and data.api_version[0] == major, (service_type, data)
            assert data.url.startswith(gw)
    finally:
        conn.close()
