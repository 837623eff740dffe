"""Networks: Neutron shapes, segments from the configured range, project scoping."""

from __future__ import annotations

import asyncio

from netapi_helpers import fault_type, network_api


async def test_create_shows_neutron_shape_and_admin_only_provider(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        assert net["status"] == "ACTIVE" and net["project_id"] == net["tenant_id"] == "pA"
        assert net["subnets"] == [] and net["shared"] is False and net["router:external"] is False
        assert net["mtu"] == 1450 and net["port_security_enabled"] is True
        assert "provider:network_type" not in net
        admin_view = (await api.get("pA", f"/v2.0/networks/{net['id']}", "admin")).json()
        assert admin_view["network"]["provider:network_type"] == "vxlan"
        assert 1000 <= admin_view["network"]["provider:segmentation_id"] <= 1999
        denied = await api.post(
            "pA", "/v2.0/networks", {"network": {"provider:network_type": "flat"}}
        )
        assert denied.status_code == 403
        flat = await api.post(
            "admin", "/v2.0/networks", {"network": {"provider:network_type": "flat"}}, "admin"
        )
        assert flat.json()["network"]["provider:physical_network"] == "physnet1"
        renamed = await api.put("pA", f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}})
        assert renamed.json()["network"]["name"] == "x"
        assert renamed.json()["network"]["revision_number"] == 2


async def test_segments_are_unique_under_concurrency_and_run_out(tmp_path) -> None:
    async with network_api(tmp_path, vxlan_range="1000-1004") as api:
        body = {"network": {"name": "n"}}
        results = await asyncio.gather(*(api.post("pA", "/v2.0/networks", body) for _ in range(8)))
        assert sorted(r.status_code for r in results) == [201] * 5 + [409] * 3
        listed = (await api.get("adm", "/v2.0/networks", "admin")).json()["networks"]
        segments = [n["provider:segmentation_id"] for n in listed]
        assert sorted(segments) == [1000, 1001, 1002, 1003, 1004]


async def test_other_projects_get_404_and_shared_networks_are_visible(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        private = await api.network("pA")
        path = f"/v2.0/networks/{private['id']}"
        seen = await api.get("pB", path)
        assert seen.status_code == 404 and fault_type(seen) == "NetworkNotFound"
        assert (await api.put("pB", path, {"network": {"name": "x"}})).status_code == 404
        assert (await api.delete("pB", path)).status_code == 404
        shared = await api.post(
            "pA", "/v2.0/networks", {"network": {"name": "s", "shared": True}}, "admin"
        )
        ext = await api.post(
            "pA", "/v2.0/networks", {"network": {"name": "e", "router:external": True}}, "admin"
        )
        ids = {n["id"] for n in (await api.get("pB", "/v2.0/networks")).json()["networks"]}
        assert ids == {shared.json()["network"]["id"], ext.json()["network"]["id"]}
        assert len((await api.get("pC", "/v2.0/networks", "admin")).json()["networks"]) == 3
        assert (await api.get("pB", "/v2.0/networks/not-a-uuid")).status_code == 404
        assert (await api.get("pA", f"/v2.0/networks?name={private['name']}")).json()["networks"][
            0
        ]["id"] == private["id"]


async def test_delete_with_ports_is_network_in_use(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        port = await api.port("pA", net["id"])
        busy = await api.delete("pA", f"/v2.0/networks/{net['id']}")
        assert busy.status_code == 409 and fault_type(busy) == "NetworkInUse"
        assert (await api.delete("pA", f"/v2.0/ports/{port['id']}")).status_code == 204
        assert (await api.delete("pA", f"/v2.0/networks/{net['id']}")).status_code == 204
        gone = await api.get("pA", f"/v2.0/networks/{net['id']}")
        assert gone.status_code == 404


async def test_list_pages_with_links(tmp_path) -> None:
    """Neutron's pagination links, on the gateway's public URL and prefix: next unless a
    forward page is short, previous unless a backward page is (page_reverse=True)."""
    gateway = {
        "X-Forwarded-Host": "gw.example:8080",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Prefix": "/network",
    }
    public = "https://gw.example:8080/network/v2.0/networks"

    def links(page: dict) -> dict[str, str]:
        return {link["rel"]: link["href"] for link in page.get("networks_links", [])}

    async def follow(href: str) -> dict:
        assert href.startswith(public + "?"), href
        local = href.removeprefix("https://gw.example:8080/network")
        resp = await api.http.get(local, headers=api.as_("pA") | gateway)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async with network_api(tmp_path) as api:
        for name in ("c", "a", "b"):
            await api.network("pA", name=name)
        first = await follow(f"{public}?limit=2&sort_key=name&sort_dir=asc")
        assert [n["name"] for n in first["networks"]] == ["a", "b"]
        assert set(links(first)) == {"next", "previous"}
        rest = await follow(links(first)["next"])
        assert [n["name"] for n in rest["networks"]] == ["c"]
        # A short forward page: no next; its previous link pages back from "c".
        assert set(links(rest)) == {"previous"}
        assert "page_reverse=True" in links(rest)["previous"]
        back = await follow(links(rest)["previous"])
        assert [n["name"] for n in back["networks"]] == ["a", "b"]
        # Backwards: a full page has both links, next pages forward again (no page_reverse).
        assert "page_reverse" not in links(back)["next"]
        again = await follow(links(back)["next"])
        assert [n["name"] for n in again["networks"]] == ["c"]
        # A short backward page has no previous.
        start = await follow(links(back)["previous"])
        assert start["networks"] == [] and set(links(start)) == {"next"}
        # Without limit: no links; limit=0 is no limit.
        whole = (await api.get("pA", "/v2.0/networks?limit=0")).json()
        assert len(whole["networks"]) == 3 and "networks_links" not in whole
        # A direct call links to the address it was called at.
        direct = (await api.get("pA", "/v2.0/networks?limit=1")).json()
        assert links(direct)["next"].startswith(str(api.http.base_url).rstrip("/") + "/v2.0/")
