"""Image v2 beyond create/upload: tags, members (sharing between projects), schemas,
the list's size/sort/os_hidden filters, and owners deactivating their own images."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import ADMIN, Api, compute_api, private_vhost

IMAGES = "/image/v2/images"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _ids(api: Api, project: str, query: str = "") -> list[str]:
    resp = await api.get(project, f"{IMAGES}{query}")
    assert resp.status_code == 200, resp.text
    return [i["id"] for i in resp.json()["images"]]


async def _patch(api: Api, project: str, image_id: str, ops: list[dict[str, Any]]) -> Any:
    return await api.http.patch(f"{IMAGES}/{image_id}", json=ops, headers=api.as_(project) | PATCH)


async def test_tags_add_remove_and_filter(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        image = await api.image("p1", b"data", tags=["a"])
        other = await api.image("p1", b"more")
        url = f"{IMAGES}/{image['id']}/tags"
        assert (await api.put("p1", f"{url}/b", None)).status_code == 204
        assert (await api.put("p1", f"{url}/b", None)).status_code == 204  # idempotent
        shown = (await api.get("p1", f"{IMAGES}/{image['id']}")).json()
        assert shown["tags"] == ["a", "b"]
        assert await _ids(api, "p1", "?tag=a&tag=b") == [image["id"]]
        assert await _ids(api, "p1", "?tag=zzz") == []

        assert (await api.delete("p1", f"{url}/a")).status_code == 204
        gone = await api.delete("p1", f"{url}/a")
        assert gone.status_code == 404 and gone.json()["title"] == "Not Found"
        assert (await api.get("p1", f"{IMAGES}/{image['id']}")).json()["tags"] == ["b"]
        assert await _ids(api, "p1", "?tag=a") == []

        long = await api.put("p1", f"{url}/{'x' * 256}", None)
        assert long.status_code == 400 and long.json()["code"] == 400
        missing = await api.put("p1", f"{IMAGES}/{other['id'][:-1]}0/tags/x", None)
        assert missing.status_code == 404
        # Another project's image is not there for it; a public one is not its to tag.
        assert (await api.put("p2", f"{url}/c", None)).status_code == 404
        public = await api.image("admin", b"pub", visibility="public", roles=ADMIN)
        assert (await api.put("p2", f"{IMAGES}/{public['id']}/tags/c", None)).status_code == 403


async def test_members_share_accept_reject(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        image = await api.image("p1", b"shared-bytes")  # Glance's default: shared
        assert image["visibility"] == "shared"
        members = f"{IMAGES}/{image['id']}/members"
        assert image["id"] not in await _ids(api, "p2")
        assert (await api.get("p2", f"{IMAGES}/{image['id']}")).status_code == 404

        added = await api.post("p1", members, {"member": "p2"})
        assert added.status_code == 200, added.text
        member = added.json()
        assert member["status"] == "pending" and member["member_id"] == "p2"
        assert member["image_id"] == image["id"] and member["schema"] == "/v2/schemas/member"
        dup = await api.post("p1", members, {"member": "p2"})
        assert dup.status_code == 409 and dup.json()["code"] == 409

        # Pending: readable by id (and bootable), listed only when asked for.
        assert (await api.get("p2", f"{IMAGES}/{image['id']}")).status_code == 200
        assert image["id"] not in await _ids(api, "p2")
        assert await _ids(api, "p2", "?visibility=shared&member_status=pending") == [image["id"]]
        assert await _ids(api, "p2", "?member_status=all") == [image["id"]]
        assert await _ids(api, "p3", "?visibility=shared&member_status=all") == []

        # Only the member answers; the owner may not, a third project finds nothing.
        owner_try = await api.put("p1", f"{members}/p2", {"status": "accepted"})
        assert owner_try.status_code == 403
        assert (await api.put("p3", f"{members}/p2", {"status": "accepted"})).status_code == 404
        bad = await api.put("p2", f"{members}/p2", {"status": "maybe"})
        assert bad.status_code == 400 and "maybe" in bad.json()["message"]
        accepted = await api.put("p2", f"{members}/p2", {"status": "accepted"})
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
        assert image["id"] in await _ids(api, "p2")
        assert await _ids(api, "p2", "?visibility=shared") == [image["id"]]

        # The owner lists every member; a member only itself; others see nothing.
        await api.post("p1", members, {"member": "p3"})
        listed = (await api.get("p1", members)).json()
        assert listed["schema"] == "/v2/schemas/members"
        assert {(m["member_id"], m["status"]) for m in listed["members"]} == {
            ("p2", "accepted"),
            ("p3", "pending"),
        }
        assert [m["member_id"] for m in (await api.get("p2", members)).json()["members"]] == ["p2"]
        assert (await api.get("p2", f"{members}/p3")).status_code == 404
        assert (await api.get("p2", f"{members}/p2")).json()["status"] == "accepted"
        assert (await api.get("p4", members)).status_code == 404

        rejected = await api.put("p3", f"{members}/p3", {"status": "rejected"})
        assert rejected.json()["status"] == "rejected"
        assert image["id"] not in await _ids(api, "p3")
        assert await _ids(api, "p3", "?visibility=shared&member_status=rejected") == [image["id"]]

        # Removing a member is the owner's; afterwards the image is gone for it.
        assert (await api.delete("p2", f"{members}/p2")).status_code == 403
        assert (await api.delete("p1", f"{members}/p2")).status_code == 204
        assert (await api.delete("p1", f"{members}/p2")).status_code == 404
        assert image["id"] not in await _ids(api, "p2", "?member_status=all")
        assert (await api.get("p2", f"{IMAGES}/{image['id']}")).status_code == 404

        # Deleting the image takes its members with it.
        assert (await api.delete("p1", f"{IMAGES}/{image['id']}")).status_code == 204
        assert await _ids(api, "p3", "?member_status=all") == []


async def test_member_refusals(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        private = await api.image("p1", b"private", visibility="private")
        shared = await api.image("p1", b"shared")
        members = f"{IMAGES}/{shared['id']}/members"
        only_shared = await api.post("p1", f"{IMAGES}/{private['id']}/members", {"member": "p2"})
        assert only_shared.status_code == 403 and only_shared.json()["title"] == "Forbidden"
        for body, words in (
            ({}, "not specified"),
            ({"member": ""}, "can't be empty"),
            ("p2", "Expected a member"),
            ({"member": ["p2"]}, "Expected a member"),
        ):
            resp = await api.post("p1", members, body)
            assert resp.status_code == 400 and words in resp.json()["message"], resp.text
        assert (await api.post("p2", members, {"member": "p3"})).status_code == 404
        assert (await api.put("p2", f"{members}/p2", {"status": "accepted"})).status_code == 404
        await api.post("p1", members, {"member": "p2"})
        assert (await api.put("p2", f"{members}/p2", {})).status_code == 400
        # Making the image private hides it from its members, whatever they answered.
        await api.put("p2", f"{members}/p2", {"status": "accepted"})
        made_private = await _patch(
            api, "p1", shared["id"], [{"op": "replace", "path": "/visibility", "value": "private"}]
        )
        assert made_private.status_code == 200, made_private.text
        assert shared["id"] not in await _ids(api, "p2")
        assert (await api.get("p2", f"{IMAGES}/{shared['id']}")).status_code == 404


async def test_community_visibility(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        image = await api.image("p1", b"c", visibility="community")
        assert (await api.get("p2", f"{IMAGES}/{image['id']}")).status_code == 200
        assert image["id"] not in await _ids(api, "p2")
        assert await _ids(api, "p2", "?visibility=community") == [image["id"]]
        assert image["id"] in await _ids(api, "p1")
        bad = await api.get("p1", f"{IMAGES}?visibility=everyone")
        assert bad.status_code == 400 and "everyone" in bad.json()["message"]


async def test_schemas(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        image = (await api.get("p1", "/image/v2/schemas/image")).json()
        assert image["name"] == "image"
        assert image["additionalProperties"] == {"type": "string"}
        assert image["properties"]["visibility"]["enum"] == [
            "community",
            "public",
            "private",
            "shared",
        ]
        assert image["properties"]["disk_format"]["enum"] == [
            None,
            "qcow2",
            "raw",
            "aki",
            "ari",
            "ami",
        ]
        assert {"rel": "describedby", "href": "{schema}"} in image["links"]
        images = (await api.get("p1", "/image/v2/schemas/images")).json()
        assert images["name"] == "images"
        assert images["properties"]["images"]["items"] == image
        assert set(images["properties"]) == {"images", "first", "next", "schema"}
        member = (await api.get("p1", "/image/v2/schemas/member")).json()
        assert member["name"] == "member" and member["additionalProperties"] is False
        assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
        members = (await api.get("p1", "/image/v2/schemas/members")).json()
        assert members["name"] == "members"
        assert members["properties"]["members"]["items"] == member
        missing = await api.get("p1", "/image/v2/schemas/flavor")
        assert missing.status_code == 404 and missing.json()["code"] == 404

        # What the API answers fits its own schemas (types and enums of each attribute).
        shown = await api.image("p1", b"x" * 10, os_distro="tiny", tags=["t"])
        shown = (await api.get("p1", f"{IMAGES}/{shown['id']}")).json()
        _fits(shown, image)
        for item in (await api.get("p1", IMAGES)).json()["images"]:
            _fits(item, images["properties"]["images"]["items"])
        added = (await api.post("p1", f"{IMAGES}/{shown['id']}/members", {"member": "p2"})).json()
        _fits(added, member)


TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


def _fits(value: dict[str, Any], schema: dict[str, Any]) -> None:
    """A small check of ``value`` against a Glance schema: each attribute's type and enum;
    attributes the schema does not name are strings where it allows extra ones."""
    for key, item in value.items():
        spec = schema["properties"].get(key)
        if spec is None:
            assert schema["additionalProperties"] == {"type": "string"}, key
            assert isinstance(item, str), key
            continue
        kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        ok = (item is None and "null" in kinds) or any(
            isinstance(item, TYPES[k]) and not (k == "integer" and isinstance(item, bool))
            for k in kinds
            if k != "null"
        )
        assert ok, (key, item, kinds)
        if "enum" in spec:
            assert item in spec["enum"], (key, item)


async def test_size_and_sort_filters(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        small = await api.image("p1", b"s" * 100, name="b")
        large = await api.image("p1", b"l" * 3000, name="a")
        middle = await api.image("p1", b"m" * 1500, name="c")
        empty = (await api.post("p1", IMAGES, {"name": "d"})).json()  # no data: size None

        assert await _ids(api, "p1", "?size_min=1000&size_max=2000") == [middle["id"]]
        assert set(await _ids(api, "p1", "?size_min=1500")) == {middle["id"], large["id"]}
        assert await _ids(api, "p1", "?size_max=99") == []
        bad = await api.get("p1", f"{IMAGES}?size_min=big")
        assert bad.status_code == 400 and bad.json()["title"] == "Bad Request"

        by_size = [large["id"], middle["id"], small["id"]]
        assert (await _ids(api, "p1", "?sort=size:desc"))[:3] == by_size
        assert (await _ids(api, "p1", "?sort_key=size&sort_dir=desc"))[:3] == by_size
        assert (await _ids(api, "p1", "?sort=size:asc"))[1:] == by_size[::-1]
        assert (await _ids(api, "p1", "?sort=size:asc"))[0] == empty["id"]
        assert await _ids(api, "p1", "?sort=name:asc") == [
            large["id"],
            small["id"],
            middle["id"],
            empty["id"],
        ]
        assert await _ids(api, "p1", "?sort_key=name&sort_dir=asc&size=1500") == [middle["id"]]
        two_keys = await _ids(api, "p1", "?sort_key=status&sort_key=name&sort_dir=asc")
        assert two_keys == [large["id"], small["id"], middle["id"], empty["id"]]  # active < queued

        for query, words in (
            ("?sort=owner:asc", "Invalid sort key"),
            ("?sort=size:up", "Invalid sort direction"),
            ("?sort=size&sort_key=name", "cannot be combined"),
            ("?sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc", "match"),
            ("?member_status=maybe", "Invalid status"),
            ("?os_hidden=maybe", "os_hidden"),
            ("?limit=-1", "positive"),
            ("?changes-since=2020-01-01", "no longer available"),
        ):
            resp = await api.get("p1", f"{IMAGES}{query}")
            assert resp.status_code == 400 and words in resp.json()["message"], (query, resp.text)

        page = (await api.get("p1", f"{IMAGES}?sort=size:desc&limit=2")).json()
        assert [i["id"] for i in page["images"]] == by_size[:2]
        assert page["first"] == "/v2/images?sort=size%3Adesc&limit=2"
        rest = (await api.get("p1", IMAGES + page["next"].removeprefix("/v2/images"))).json()
        assert [i["id"] for i in rest["images"]] == [small["id"], empty["id"]]
        assert "next" not in rest
        unknown = await api.get("p1", f"{IMAGES}?marker={small['id'][:-1]}0")
        assert unknown.status_code == 400


async def test_hidden_images(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        hidden = await api.image("p1", b"h", os_hidden=True)
        shown = await api.image("p1", b"s")
        assert hidden["os_hidden"] is True and shown["os_hidden"] is False
        assert await _ids(api, "p1") == [shown["id"]]
        assert await _ids(api, "p1", "?os_hidden=true") == [hidden["id"]]
        assert (await api.get("p1", f"{IMAGES}/{hidden['id']}")).json()["os_hidden"] is True

        patched = await _patch(
            api, "p1", shown["id"], [{"op": "replace", "path": "/os_hidden", "value": True}]
        )
        assert patched.status_code == 200 and patched.json()["os_hidden"] is True
        assert set(patched.json()) == set(shown)  # no extra property appeared
        assert await _ids(api, "p1") == []
        bad = await _patch(
            api, "p1", shown["id"], [{"op": "replace", "path": "/os_hidden", "value": "yes"}]
        )
        assert bad.status_code == 400
        back = await _patch(
            api, "p1", shown["id"], [{"op": "replace", "path": "/os_hidden", "value": False}]
        )
        assert back.json()["os_hidden"] is False
        assert await _ids(api, "p1") == [shown["id"]]
        assert (await api.post("p1", IMAGES, {"os_hidden": "no"})).status_code == 400


async def test_owner_deactivates_and_reactivates(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        image = await api.image("p1", b"owned")
        public = await api.image("admin", b"pub", visibility="public", roles=ADMIN)
        url = f"{IMAGES}/{image['id']}/actions"
        assert (await api.post("p1", f"{url}/deactivate", None)).status_code == 204
        assert (await api.get("p1", f"{IMAGES}/{image['id']}")).json()["status"] == "deactivated"
        assert (await api.post("p1", f"{url}/deactivate", None)).status_code == 204  # again
        assert (await api.post("p1", f"{url}/reactivate", None)).status_code == 204
        assert (await api.get("p1", f"{IMAGES}/{image['id']}")).json()["status"] == "active"

        # Not another project's: hidden (404) or, if it can read it, refused (403).
        assert (await api.post("p2", f"{url}/deactivate", None)).status_code == 404
        pub_url = f"{IMAGES}/{public['id']}/actions/deactivate"
        refused = await api.post("p2", pub_url, None)
        assert refused.status_code == 403 and refused.json()["title"] == "Forbidden"
        assert (await api.post("admin", f"{url}/deactivate", None, *ADMIN)).status_code == 204
        queued = (await api.post("p1", IMAGES, {"name": "q"})).json()
        not_yet = await api.post("p1", f"{IMAGES}/{queued['id']}/actions/deactivate", None)
        assert not_yet.status_code == 403
