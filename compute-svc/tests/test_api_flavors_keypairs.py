"""Flavors (admin-made, everyone reads) and keypairs (per user) over Compute v2.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import ADMIN, compute_api, private_vhost


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def test_flavor_lifecycle_and_visibility(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        small = await api.flavor("m1.small", id="42", ram=512, vcpus=2, disk=10, swap=256)
        assert small["id"] == "42" and small["swap"] == 256
        assert small["os-flavor-access:is_public"] is True
        assert small["OS-FLV-EXT-DATA:ephemeral"] == 0
        hidden = await api.flavor("secret", **{"os-flavor-access:is_public": False})

        listed = (await api.get("p1", "/v2.1/flavors")).json()["flavors"]
        assert [f["name"] for f in listed] == ["m1.small"]
        assert set(listed[0]) == {"id", "name", "links"}
        detail = (await api.get("p1", "/v2.1/flavors/detail?is_public=None")).json()
        assert detail["flavors"][0]["ram"] == 512 and detail["flavors"][0]["vcpus"] == 2
        as_admin = await api.get("admin", "/v2.1/flavors/detail?is_public=None", *ADMIN)
        assert {f["name"] for f in as_admin.json()["flavors"]} == {"m1.small", "secret"}

        missing = await api.get("p1", f"/v2.1/flavors/{hidden['id']}")
        assert missing.status_code == 404
        assert missing.json()["itemNotFound"]["code"] == 404
        assert (await api.get("p1", "/v2.1/flavors/42")).json()["flavor"]["disk"] == 10

        denied = await api.post("p1", "/v2.1/flavors", {"flavor": {"name": "x", "ram": 1}})
        assert denied.status_code == 403 and "forbidden" in denied.json()
        dup = await api.post(
            "admin", "/v2.1/flavors", {"flavor": {"name": "m1.small", "ram": 1, "vcpus": 1}}, *ADMIN
        )
        assert dup.status_code == 409 and "conflictingRequest" in dup.json()
        bad = await api.post(
            "admin", "/v2.1/flavors", {"flavor": {"name": "b", "ram": -1, "vcpus": 1}}, *ADMIN
        )
        assert bad.status_code == 400 and "badRequest" in bad.json()

        paged = (await api.get("admin", "/v2.1/flavors?is_public=None&limit=1", *ADMIN)).json()
        assert len(paged["flavors"]) == 1 and paged["flavors_links"][0]["rel"] == "next"

        assert (await api.delete("p1", "/v2.1/flavors/42")).status_code == 403
        assert (await api.delete("admin", "/v2.1/flavors/42", *ADMIN)).status_code == 202
        assert (await api.get("p1", "/v2.1/flavors/42")).status_code == 404


PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@host"
)


async def test_keypairs_are_per_user(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        made = await api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "gen"}})
        assert made.status_code == 200, made.text
        pair = made.json()["keypair"]
        assert pair["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert pair["public_key"].startswith("ssh-ed25519 ")
        assert len(pair["fingerprint"].split(":")) == 16

        body = {"keypair": {"name": "mine", "public_key": PUBLIC_KEY}}
        imported = (await api.post("p1", "/v2.1/os-keypairs", body)).json()["keypair"]
        assert "private_key" not in imported and imported["public_key"] == PUBLIC_KEY

        listed = (await api.get("p1", "/v2.1/os-keypairs")).json()["keypairs"]
        assert sorted(k["keypair"]["name"] for k in listed) == ["gen", "mine"]
        shown = (await api.get("p1", "/v2.1/os-keypairs/mine")).json()["keypair"]
        assert shown["user_id"] == "user-p1"

        # Another user sees none of them, and may use the same names.
        assert (await api.get("p2", "/v2.1/os-keypairs")).json()["keypairs"] == []
        assert (await api.get("p2", "/v2.1/os-keypairs/mine")).status_code == 404
        assert (await api.post("p2", "/v2.1/os-keypairs", body)).status_code == 200

        assert (await api.post("p1", "/v2.1/os-keypairs", body)).status_code == 409
        bad_key = {"keypair": {"name": "bad", "public_key": "ssh-rsa not-a-key"}}
        resp = await api.post("p1", "/v2.1/os-keypairs", bad_key)
        assert resp.status_code == 400 and "badRequest" in resp.json()
        bad_name = await api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "a/b"}})
        assert bad_name.status_code == 400

        assert (await api.delete("p1", "/v2.1/os-keypairs/gen")).status_code == 202
        assert (await api.get("p1", "/v2.1/os-keypairs/gen")).status_code == 404


async def test_base_microversion_only(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        ok = await api.get("p1", "/v2.1/flavors", headers={"OpenStack-API-Version": "compute 2.1"})
        assert ok.status_code == 200
        assert ok.headers["OpenStack-API-Version"] == "compute 2.1"
        assert ok.headers["X-Compute-Request-Id"].startswith("req-")
        latest = await api.get(
            "p1", "/v2.1/flavors", headers={"X-OpenStack-Nova-API-Version": "latest"}
        )
        assert latest.status_code == 200
        high = await api.get(
            "p1", "/v2.1/flavors", headers={"OpenStack-API-Version": "compute 2.60"}
        )
        assert high.status_code == 406
        [fault] = high.json().values()
        assert fault["code"] == 406 and "not supported" in fault["message"]


async def test_limits_and_zones(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        absolute = (await api.get("p1", "/v2.1/limits")).json()["limits"]["absolute"]
        assert absolute["maxTotalInstances"] == 10 and absolute["totalInstancesUsed"] == 0
        zones = (await api.get("p1", "/v2.1/os-availability-zone")).json()
        assert zones["availabilityZoneInfo"][0]["zoneName"] == "nova"
