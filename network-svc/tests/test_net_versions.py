"""Networking's version documents as Neutron serves them, on the gateway's public URL."""

from __future__ import annotations

from netapi_helpers import network_api

GATEWAY = {
    "X-Forwarded-Host": "gw.example:8080",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/network",
}
PUBLIC = "https://gw.example:8080/network"


async def test_root_lists_v2_0_without_a_token(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        resp = await api.http.get("/", headers=GATEWAY)
        # Neutron answers its root 200, one CURRENT version, its link through the gateway.
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "versions": [
                {
                    "id": "v2.0",
                    "status": "CURRENT",
                    "links": [{"rel": "self", "href": f"{PUBLIC}/v2.0/"}],
                }
            ]
        }


async def test_version_root_lists_the_core_resources_it_serves(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        for path in ("/v2.0/", "/v2.0"):
            resp = await api.http.get(path, headers=GATEWAY)
            assert resp.status_code == 200, resp.text
            resources = resp.json()["resources"]
            assert {(r["name"], r["collection"]) for r in resources} == {
                ("network", "networks"),
                ("subnet", "subnets"),
                ("port", "ports"),
            }
            # Every link is on the public URL and names a collection that is served.
            for res in resources:
                (link,) = res["links"]
                assert link == {"rel": "self", "href": f"{PUBLIC}/v2.0/{res['collection']}"}
                local = link["href"].removeprefix(PUBLIC)
                listed = await api.http.get(local, headers=api.as_("pA"))
                assert listed.status_code == 200 and res["collection"] in listed.json()
