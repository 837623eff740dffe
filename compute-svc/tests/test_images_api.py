"""Image v2: create, streamed upload and download, scoping, properties, Glance errors."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from api_helpers import ADMIN, compute_api, private_vhost


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def test_upload_download_and_status(tmp_path, amqp_url) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    async with compute_api(tmp_path, amqp_url) as api:
        body = {
            "name": "disk",
            "disk_format": "qcow2",
            "container_format": "bare",
            "os_distro": "x",
        }
        created = await api.post("p1", "/image/v2/images", body)
        assert created.status_code == 201, created.text
        image = created.json()
        assert image["status"] == "queued" and image["visibility"] == "shared"  # Glance's default
        assert image["os_distro"] == "x" and image["owner"] == "p1"
        path = f"/image/v2/images/{image['id']}"

        async def chunks():
            for start in range(0, len(data), 1 << 20):
                yield data[start : start + (1 << 20)]

        headers = api.as_("p1") | {"Content-Type": "application/octet-stream"}
        put = await api.http.put(f"{path}/file", content=chunks(), headers=headers)
        assert put.status_code == 204, put.text
        shown = (await api.get("p1", path)).json()
        assert shown["status"] == "active" and shown["size"] == len(data)
        assert shown["checksum"] == hashlib.md5(data).hexdigest()
        assert shown["os_hash_algo"] == "sha512"
        assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()

        got = await api.get("p1", f"{path}/file")
        assert got.status_code == 200 and got.content == data
        again = await api.http.put(f"{path}/file", content=b"x", headers=headers)
        assert again.status_code == 409 and again.json()["title"] == "Conflict"

        store = tmp_path / "images" / image["id"]
        assert store.stat().st_size == len(data)
        assert (await api.delete("p1", path)).status_code == 204
        assert not store.exists()
        assert (await api.get("p1", path)).status_code == 404


async def test_visibility_and_scoping(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        private = await api.image("p1", b"private-bytes")
        public = await api.image("admin", b"public-bytes", visibility="public", roles=ADMIN)

        mine = (await api.get("p1", "/image/v2/images")).json()
        assert {i["id"] for i in mine["images"]} == {private["id"], public["id"]}
        assert mine["first"] == "/v2/images" and mine["schema"] == "/v2/schemas/images"
        theirs = (await api.get("p2", "/image/v2/images")).json()["images"]
        assert [i["id"] for i in theirs] == [public["id"]]

        hidden = await api.get("p2", f"/image/v2/images/{private['id']}")
        assert hidden.status_code == 404
        assert hidden.json() == {
            "code": 404,
            "title": "Not Found",
            "message": f"Image {private['id']} could not be found.",
        }
        assert (await api.get("p2", f"/image/v2/images/{private['id']}/file")).status_code == 404
        assert (await api.delete("p2", f"/image/v2/images/{private['id']}")).status_code == 404
        assert (await api.delete("p2", f"/image/v2/images/{public['id']}")).status_code == 403

        body = {"name": "x", "disk_format": "raw", "container_format": "bare"}
        denied = await api.post("p1", "/image/v2/images", body | {"visibility": "public"})
        assert denied.status_code == 403

        by_id = await api.get("p2", f"/image/v2/images?id=in:{public['id']},{private['id']}")
        assert [i["id"] for i in by_id.json()["images"]] == [public["id"]]
        paged = (await api.get("p1", "/image/v2/images?limit=1")).json()
        assert len(paged["images"]) == 1 and paged["next"].startswith("/v2/images?marker=")


async def test_formats_properties_and_patch(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        kernel = await api.image("p1", b"kernel", disk_format="aki", container_format="aki")
        ramdisk = await api.image("p1", b"initrd", disk_format="ari", container_format="ari")
        body = {
            "name": "tiny",
            "disk_format": "ami",
            "container_format": "ami",
            "kernel_id": kernel["id"],
            "ramdisk_id": ramdisk["id"],
        }
        resp = await api.post("p1", "/image/v2/images", body)
        assert resp.status_code == 201, resp.text
        machine = resp.json()
        assert machine["kernel_id"] == kernel["id"] and machine["ramdisk_id"] == ramdisk["id"]

        bad = [
            {"name": "b", "disk_format": "vmdk", "container_format": "bare"},
            {"name": "b", "disk_format": "raw", "container_format": "docker"},
            {"name": "b", "disk_format": "raw", "container_format": "bare", "kernel_id": "nope"},
            {"name": "b", "visibility": "everyone"},
            {"name": "b", "tags": "not-a-list"},
        ]
        for body in bad:
            resp = await api.post("p1", "/image/v2/images", body)
            assert resp.status_code == 400, (body, resp.text)
            assert resp.json()["code"] == 400
        assert (await api.post("p1", "/image/v2/images", {"status": "active"})).status_code == 403

        patch = [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
            {"op": "remove", "path": "/ramdisk_id"},
        ]
        headers = api.as_("p1") | {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        url = f"/image/v2/images/{machine['id']}"
        patched = await api.http.patch(url, json=patch, headers=headers)
        assert patched.status_code == 200, patched.text
        out = patched.json()
        assert out["name"] == "renamed" and out["hw_disk_bus"] == "virtio"
        assert "ramdisk_id" not in out
        # Glance's v2.0 patch form (the op as the key), as Tempest and older clients send it.
        old_form = [{"replace": "/name", "value": "again"}, {"add": "/os_distro", "value": "t"}]
        v20 = headers | {"Content-Type": "application/openstack-images-v2.0-json-patch"}
        patched = await api.http.patch(url, json=old_form, headers=v20)
        assert patched.status_code == 200, patched.text
        assert (patched.json()["name"], patched.json()["os_distro"]) == ("again", "t")

        empty = await api.get("p1", f"{url}/file")
        assert empty.status_code == 204
        no_format = (await api.post("p1", "/image/v2/images", {"name": "n"})).json()
        upload = await api.http.put(
            f"/image/v2/images/{no_format['id']}/file", content=b"x", headers=api.as_("p1")
        )
        assert upload.status_code == 400
        assert (await api.get("p1", "/image/v2/images/not-a-uuid")).status_code == 404


async def test_compute_view_of_images(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        image = await api.image("p1", b"bytes", os_distro="tiny")
        listed = (await api.get("p1", "/v2.1/images/detail")).json()["images"]
        assert [(i["id"], i["status"], i["metadata"]) for i in listed] == [
            (image["id"], "ACTIVE", {"os_distro": "tiny"})
        ]
        assert (await api.get("p2", f"/v2.1/images/{image['id']}")).status_code == 404
        missing = await api.get("p2", f"/v2.1/images/{image['id']}")
        assert "itemNotFound" in missing.json()
        # Nova's image proxy deletes through the image API: not another project's, 204 once.
        assert (await api.delete("p2", f"/v2.1/images/{image['id']}")).status_code == 404
        assert (await api.delete("p1", f"/v2.1/images/{image['id']}")).status_code == 204
        assert (await api.get("p1", f"/v2.1/images/{image['id']}")).status_code == 404
        assert (await api.delete("p1", f"/v2.1/images/{image['id']}")).status_code == 404
