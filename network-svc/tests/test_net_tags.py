"""Resource tags (standard-attr-tag) over HTTP: the tag routes, tags at create, the four
tag filters, who may change them, Neutron's faults, and concurrent adds on one row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from netapi_helpers import Api, fault_type, network_api
from test_net_ipam_concurrency import temp_postgres


@pytest.fixture(name="db", params=["sqlite", "postgresql"])
async def db_fixture(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"default_network_type": "local"}
        return
    async with temp_postgres() as url:
        yield {"default_network_type": "local", "db_url": url}


async def _tags(api: Api, project: str, path: str) -> list[str]:
    resp = await api.get(project, f"{path}/tags")
    assert resp.status_code == 200, resp.text
    return resp.json()["tags"]


async def test_tag_routes_on_a_network(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        path = f"/v2.0/networks/{net['id']}"
        assert net["tags"] == [] and await _tags(api, "pA", path) == []
        added = await api.put("pA", f"{path}/tags/red", {})
        assert added.status_code == 201 and added.content == b""
        assert (await api.put("pA", f"{path}/tags/red", {})).status_code == 201  # idempotent
        assert await _tags(api, "pA", path) == ["red"]
        assert (await api.get("pA", f"{path}/tags/red")).status_code == 204
        missing = await api.get("pA", f"{path}/tags/blue")
        assert missing.status_code == 404 and fault_type(missing) == "TagNotFound"
        assert missing.json()["NeutronError"]["message"] == (
            f"Tag blue could not be found for network {net['id']}."
        )
        # Replace-all PUT, as `openstack network set --tag` sends it; the resource shows
        # them and its revision moved.
        replaced = await api.put("pA", f"{path}/tags", {"tags": ["b", "a"]})
        assert replaced.status_code == 200 and replaced.json() == {"tags": ["a", "b"]}
        shown = (await api.get("pA", path)).json()["network"]
        assert shown["tags"] == ["a", "b"]
        assert shown["revision_number"] > net["revision_number"]
        assert (await api.delete("pA", f"{path}/tags/a")).status_code == 204
        again = await api.delete("pA", f"{path}/tags/a")
        assert again.status_code == 404 and fault_type(again) == "TagNotFound"
        assert (await api.delete("pA", f"{path}/tags")).status_code == 204
        assert await _tags(api, "pA", path) == []
        # The extension is advertised.
        ext = await api.get("pA", "/v2.0/extensions/standard-attr-tag")
        assert ext.status_code == 200, ext.text


async def test_bad_tag_bodies_are_400_not_500(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        path = f"/v2.0/networks/{net['id']}/tags"
        for body in ({"x": 1}, {"tags": "a"}, {"tags": ["a", "a"]}, {"tags": [1]}, [], None):
            resp = await api.http.put(path, json=body, headers=api.as_("pA"))
            assert resp.status_code == 400, (body, resp.text)
            assert fault_type(resp) == "InvalidInput", body
        long = await api.put("pA", f"{path}/{'x' * 256}", {})
        assert long.status_code == 400 and fault_type(long) == "InvalidInput"
        bad = await api.post("pA", "/v2.0/networks", {"network": {"tags": ["a", "a"]}})
        assert bad.status_code == 400 and fault_type(bad) == "InvalidInput"
        assert await _tags(api, "pA", f"/v2.0/networks/{net['id']}") == []


async def test_other_projects_get_404_and_shared_readers_403(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        private = await api.network("pA")
        shared = await api.post(
            "admin", "/v2.0/networks", {"network": {"name": "s", "shared": True}}, "admin"
        )
        shared_id = shared.json()["network"]["id"]
        for method in ("get", "put", "delete"):
            call = getattr(api, method)
            args = ({},) if method == "put" else ()
            hidden = await call("pB", f"/v2.0/networks/{private['id']}/tags/t", *args)
            assert hidden.status_code == 404 and fault_type(hidden) == "NetworkNotFound"
        # A shared network is readable, its tags too, but only its owner changes them.
        assert await _tags(api, "pB", f"/v2.0/networks/{shared_id}") == []
        denied = await api.put("pB", f"/v2.0/networks/{shared_id}/tags", {"tags": ["x"]})
        assert denied.status_code == 403 and fault_type(denied) == "PolicyNotAuthorized"
        # An admin may tag any project's resource.
        ok = await api.put("admin", f"/v2.0/networks/{private['id']}/tags/ops", {}, "admin")
        assert ok.status_code == 201
        missing = await api.get("pA", "/v2.0/routers/00000000-0000-0000-0000-000000000000/tags")
        assert missing.status_code == 404 and fault_type(missing) == "RouterNotFound"


async def test_every_taggable_resource_takes_tags_at_create_and_by_route(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        ext = await api.post(
            "admin",
            "/v2.0/networks",
            {"network": {"name": "public", "router:external": True}},
            "admin",
        )
        ext_id = ext.json()["network"]["id"]
        await api.subnet("admin", ext_id, "203.0.113.0/28", enable_dhcp=False)
        net = await api.network("pA", tags=["n"])
        assert net["tags"] == ["n"]
        made = {
            "networks": net,
            "subnets": await api.subnet("pA", net["id"], "10.0.0.0/24", tags=["n"]),
            "ports": await api.port("pA", net["id"], tags=["n"]),
        }
        for collection, singular, body in (
            ("routers", "router", {"name": "r"}),
            ("security-groups", "security_group", {"name": "g"}),
            ("floatingips", "floatingip", {"floating_network_id": ext_id}),
        ):
            resp = await api.post("pA", f"/v2.0/{collection}", {singular: {**body, "tags": ["n"]}})
            assert resp.status_code == 201, resp.text
            made[collection] = resp.json()[singular]
        for collection, item in made.items():
            assert item["tags"] == ["n"], collection
            path = f"/v2.0/{collection}/{item['id']}"
            assert (await api.put("pA", f"{path}/tags/m", {})).status_code == 201, collection
            assert await _tags(api, "pA", path) == ["m", "n"], collection
            key = collection.replace("-", "_")
            listed = (await api.get("pA", f"/v2.0/{collection}?tags=m,n")).json()[key]
            assert [i["id"] for i in listed] == [item["id"]], collection


async def test_tag_filters(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        nets = {
            name: await api.network("pA", name=name, tags=tags)
            for name, tags in (("ab", ["a", "b"]), ("a", ["a"]), ("c", ["c"]), ("none", []))
        }

        async def names(query: str) -> set[str]:
            resp = await api.get("pA", f"/v2.0/networks?{query}")
            assert resp.status_code == 200, resp.text
            return {n["name"] for n in resp.json()["networks"]}

        assert await names("tags=a,b") == {"ab"}
        assert await names("tags=a&tags=b") == {"ab"}  # repeated parameters join
        assert await names("tags=a") == {"ab", "a"}
        assert await names("tags-any=b,c") == {"ab", "c"}
        assert await names("not-tags=a,b") == {"a", "c", "none"}
        assert await names("not-tags-any=a,c") == {"none"}
        assert await names("tags=a&not-tags=b") == {"a"}
        assert len(nets) == 4
        # An empty value filters nothing; an unknown tag filter is an unknown attribute.
        assert await names("tags=") == set(nets)
        odd = await api.get("pA", "/v2.0/networks?tags-all=a")
        assert odd.status_code == 400 and fault_type(odd) == "HTTPBadRequest"


async def test_concurrent_tag_adds_all_stay(tmp_path, db) -> None:
    async with network_api(tmp_path, **db) as api:
        net = await api.network("pA")
        path = f"/v2.0/networks/{net['id']}"
        added = await asyncio.gather(*(api.put("pA", f"{path}/tags/t{n}", {}) for n in range(8)))
        assert [r.status_code for r in added] == [201] * 8, [r.text for r in added]
        assert await _tags(api, "pA", path) == sorted(f"t{n}" for n in range(8))
