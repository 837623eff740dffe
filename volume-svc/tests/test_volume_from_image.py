"""``volume create --image``: a volume holding an image's bytes as raw, made on the volume
host from the image API's file read as the caller (FakeImageApi stands for compute-svc's
Image v2 API over real HTTP, with the real identity check); real qemu-img conversions.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from image_fixtures import FakeImageApi, qcow2_with_pattern
from iscsi_fixtures import Tgtd, needs_tgt, pattern_ok, qemu_io, tgtd_fixture  # noqa: F401
from test_volume_iscsi import _attach, _detach, _tgt_agent
from volapi_helpers import Api, volume_api

from common_rpc.testing import signing_keys
from volume_svc.domain.images import DISK_FORMATS
from volume_svc.drivers.base import DriverError
from volume_svc.drivers.images import QEMU_FORMATS, to_raw

MIB = 1 << 20
GIB = 1 << 30
pytestmark = pytest.mark.skipif(
    not (shutil.which("qemu-img") and shutil.which("qemu-io")), reason="qemu-img not installed"
)


def _leftovers(api: Api) -> list[str]:
    """Files in the storage directory other than whole volumes and snapshots."""
    assert api.agent is not None
    directory = api.agent.host.backend.storage_dir
    prefix = api.names.prefix
    return sorted(
        p.name for p in directory.iterdir() if p.name.startswith(prefix) and p.suffix != ".img"
    )


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(MIB)


def _fill(path: Path, byte: int) -> None:
    with open(path, "r+b") as f:
        f.write(bytes([byte]) * MIB)


def _format_of(path: Path) -> str:
    argv = ["qemu-img", "info", "--output=json", str(path)]
    return json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)["format"]


def _backed_by(path: Path, backing: Path) -> Path:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(backing), str(path)]
    subprocess.run(argv, check=True)
    return path


async def _create(api: Api, project: str, **volume: Any) -> Any:
    return await api.post(project, "/volumes", {"volume": volume})


async def _settled(api: Api, project: str, volume_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            shown = (await api.get(project, f"/volumes/{volume_id}")).json()["volume"]
            if shown["status"] != "creating":
                return shown
            await asyncio.sleep(0.05)


def test_the_api_accepts_exactly_the_formats_the_host_converts() -> None:
    assert set(DISK_FORMATS) == set(QEMU_FORMATS)


async def test_a_qcow2_image_becomes_a_bootable_raw_volume(tmp_path: Path) -> None:
    _signer, public = signing_keys(tmp_path / "keys")
    fake = FakeImageApi(public)
    image = fake.add(qcow2_with_pattern(tmp_path / "cirros.qcow2"), "qcow2", owner="p1")
    with fake.serving():
        async with volume_api(tmp_path, image_url=fake.url) as api:
            assert api.agent is not None
            resp = await _create(api, "p1", size=1, imageRef=image.id, name="boot")
            assert resp.status_code == 202, resp.text
            assert "volume_image_metadata" not in resp.json()["volume"]  # Cinder's create view
            vol = await api.wait_status("p1", "volumes", resp.json()["volume"]["id"], "available")
            assert vol["bootable"] == "true"
            meta = vol["volume_image_metadata"]
            assert meta["image_id"] == image.id and meta["disk_format"] == "qcow2"
            assert meta["checksum"] == image.checksum and meta["image_name"] == "cirros.qcow2"
            path = api.agent.host.backend.volume_path(vol["id"])
            # Raw now: the pattern at offset 0, the volume's whole size, no qcow2 header.
            assert _head(path) == b"\xc3" * MIB
            assert path.stat().st_size == GIB
            assert _format_of(path) == "raw"
            # Both the record and the bytes were read as the caller's project.
            assert (f"GET /image/v2/images/{image.id}", "p1") in fake.seen
            assert (f"GET /image/v2/images/{image.id}/file", "p1") in fake.seen
            assert _leftovers(api) == []

            # By name too; shown in the detailed list, not on a volume without an image.
            resp = await _create(api, "p1", size=1, imageRef="cirros.qcow2")
            assert resp.status_code == 202, resp.text
            named = await api.wait_status("p1", "volumes", resp.json()["volume"]["id"], "available")
            assert named["volume_image_metadata"]["image_id"] == image.id
            plain = await api.volume("p1")
            assert "volume_image_metadata" not in plain and plain["bootable"] == "false"
            events = [p for t, p in await api.events() if t == "volume.volume.create.end"]
            assert {e["id"] for e in events} >= {vol["id"], named["id"]}
            assert (await api.audit())["findings"] == []
            for vid in (vol["id"], named["id"], plain["id"]):
                assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
                await api.wait_status("p1", "volumes", vid, "deleted")
            assert api.agent.host.backend.list_volumes() == frozenset()


async def test_refusals_take_nothing(tmp_path: Path) -> None:
    _signer, public = signing_keys(tmp_path / "keys")
    fake = FakeImageApi(public)
    qcow = qcow2_with_pattern(tmp_path / "a.qcow2")
    mine = fake.add(qcow, "qcow2", owner="p1", name="dup")
    fake.add(qcow, "qcow2", owner="p1", name="dup")
    theirs = fake.add(qcow, "qcow2", owner="p2")
    queued = fake.add(qcow, "qcow2", owner="p1", status="queued")
    big = fake.add(qcow, "qcow2", owner="p1", min_disk=5)
    kernel = fake.add(qcow, "aki", owner="p1")
    large = fake.add(qcow, "raw", owner="p1", size=3 * GIB)
    with fake.serving():
        async with volume_api(tmp_path, image_url=fake.url) as api:
            snap_source = await api.volume("p1")
            snap = await api.snapshot("p1", snap_source["id"])
            missing = "00000000-0000-0000-0000-000000000000"
            cases: list[tuple[dict[str, Any], int, str]] = [
                ({"size": 1, "imageRef": missing}, 400, "unable to access"),
                ({"size": 1, "imageRef": theirs.id}, 400, "unable to access"),
                ({"size": 1, "imageRef": "no-such-name"}, 400, "unable to access"),
                ({"size": 1, "imageRef": "dup"}, 409, "Multiple matches"),
                ({"size": 1, "imageRef": queued.id}, 400, "is not active"),
                ({"size": 1, "imageRef": big.id}, 400, "minDisk size 5GB"),
                ({"size": 1, "imageRef": kernel.id}, 400, "not supported"),
                ({"size": 2, "imageRef": large.id}, 400, "larger than volume size"),
                ({"size": 1, "imageRef": 7}, 400, "imageRef"),
                ({"size": 1, "imageRef": mine.id, "snapshot_id": snap["id"]}, 400, "Only one"),
                ({"imageRef": mine.id}, 400, "Volume size"),
            ]
            for volume, code, words in cases:
                resp = await _create(api, "p1", **volume)
                assert resp.status_code == code, (volume, resp.text)
                assert words in resp.text, (volume, resp.text)
            # Another project's path never reaches the image API.
            before = len(fake.seen)
            resp = await api.http.post(
                "/v3/p2/volumes",
                json={"volume": {"size": 1, "imageRef": mine.id}},
                headers=api.as_("p1"),
            )
            assert resp.status_code == 404 and len(fake.seen) == before
            quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
            # The snapshot's source and its snapshot only.
            assert quota["volumes"]["in_use"] == 1 and quota["gigabytes"]["in_use"] == 2


async def test_failed_downloads_and_conversions_end_in_error_leaving_no_file(
    tmp_path: Path,
) -> None:
    _signer, public = signing_keys(tmp_path / "keys")
    fake = FakeImageApi(public)
    good = fake.add(qcow2_with_pattern(tmp_path / "good.qcow2"), "qcow2", owner="p1")
    corrupt = fake.add(tmp_path / "good.qcow2", "qcow2", owner="p1", checksum="0" * 32)
    huge = fake.add(qcow2_with_pattern(tmp_path / "huge.qcow2", size="3G"), "qcow2", owner="p1")
    # A qcow2 whose backing file is a file of the volume host: refused, never read.
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"host only" * 1000)
    backed = _backed_by(tmp_path / "backed.qcow2", secret)
    sneaky = fake.add(backed, "qcow2", owner="p1")
    with fake.serving():
        async with volume_api(tmp_path, image_url=fake.url) as api:
            assert api.agent is not None
            failed = []
            for image in (corrupt, huge, sneaky):
                resp = await _create(api, "p1", size=1, imageRef=image.id)
                assert resp.status_code == 202, resp.text
                failed.append(resp.json()["volume"]["id"])
            fake.file_status = 500
            resp = await _create(api, "p1", size=1, imageRef=good.id)
            assert resp.status_code == 202
            failed.append(resp.json()["volume"]["id"])
            for vid in failed:
                shown = await _settled(api, "p1", vid)
                assert shown["status"] == "error", shown
                assert shown["bootable"] == "false"
            await asyncio.sleep(0.2)
            assert api.agent.host.backend.list_volumes() == frozenset()
            assert _leftovers(api) == []
            assert (await api.audit())["findings"] == []
            for vid in failed:
                assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
                await api.wait_status("p1", "volumes", vid, "deleted")
            quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
            assert quota["volumes"]["in_use"] == 0


def test_to_raw_refuses_a_backing_file_and_an_image_too_large(tmp_path: Path) -> None:
    """The reasons behind two of the failed creates above, from the converter itself."""
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"host only" * 1000)
    with pytest.raises(DriverError, match="backing file"):
        to_raw(_backed_by(tmp_path / "b.qcow2", secret), tmp_path / "out1", "qcow2", GIB)
    huge = qcow2_with_pattern(tmp_path / "huge.qcow2", size="3G")
    with pytest.raises(DriverError, match="does not fit"):
        to_raw(huge, tmp_path / "out2", "qcow2", GIB)
    with pytest.raises(DriverError, match="cannot be made a volume"):
        to_raw(huge, tmp_path / "out3", "aki", GIB)
    to_raw(huge, tmp_path / "out4", "qcow2", 4 * GIB)
    assert _head(tmp_path / "out4") == b"\xc3" * MIB
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out4"]


@needs_tgt
async def test_the_image_is_read_back_through_the_iscsi_export(tmp_path: Path, tgtd: Tgtd) -> None:
    _signer, public = signing_keys(tmp_path / "keys")
    fake = FakeImageApi(public)
    image = fake.add(qcow2_with_pattern(tmp_path / "i.qcow2", pattern=0x7E), "qcow2", owner="p1")
    with fake.serving():
        async with volume_api(tmp_path, image_url=fake.url, agent=_tgt_agent(tgtd)) as api:
            resp = await _create(api, "p1", size=1, imageRef=image.id)
            assert resp.status_code == 202, resp.text
            vid = resp.json()["volume"]["id"]
            await api.wait_status("p1", "volumes", vid, "available")
            me = api.names.initiator()
            data = await _attach(api, "p1", vid, me, "s1")
            read = qemu_io(tmp_path, data, f"read -P 0x7e 0 {MIB}", initiator=me)
            assert pattern_ok(read), read.stdout + read.stderr
            await _detach(api, "p1", vid, me, "s1")
            assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
            await api.wait_status("p1", "volumes", vid, "deleted")
            assert api.names.iqn_prefix not in tgtd.targets()
            assert (await api.audit())["findings"] == []


async def test_a_volume_uploaded_to_a_qcow2_image_makes_the_same_volume_again(
    tmp_path: Path,
) -> None:
    """os-volume_upload_image: the image is made as the caller, the agent PUTs the volume
    converted to qcow2, and a volume made from that image holds the volume's bytes."""
    _signer, public = signing_keys(tmp_path / "keys")
    fake = FakeImageApi(public, upload_dir=tmp_path)
    with fake.serving():
        async with volume_api(tmp_path, image_url=fake.url) as api:
            assert api.agent is not None
            vol = await api.volume("p1", size=1, description="src")
            _fill(api.agent.host.backend.volume_path(vol["id"]), 0x3D)
            action = {"os-volume_upload_image": {"image_name": "up", "disk_format": "qcow2"}}
            resp = await api.post("p1", f"/volumes/{vol['id']}/action", action)
            assert resp.status_code == 202, resp.text
            out = resp.json()["os-volume_upload_image"]
            assert out["id"] == vol["id"] and out["status"] == "uploading"
            assert out["disk_format"] == "qcow2" and out["container_format"] == "bare"
            assert out["image_name"] == "up" and out["display_description"] == "src"
            await api.wait_status("p1", "volumes", vol["id"], "available")
            image = fake.images[out["image_id"]]
            assert image.status == "active" and image.owner == "p1"
            assert _format_of(image.path) == "qcow2"
            assert (f"PUT /image/v2/images/{image.id}/file", "p1") in fake.seen
            assert _leftovers(api) == []

            resp = await _create(api, "p1", size=1, imageRef=image.id)
            assert resp.status_code == 202, resp.text
            copy = await api.wait_status("p1", "volumes", resp.json()["volume"]["id"], "available")
            assert _head(api.agent.host.backend.volume_path(copy["id"])) == b"\x3d" * MIB

            # The image API refuses the bytes: the image made for them is deleted again.
            fake.put_status = 500
            action = {"os-volume_upload_image": {"image_name": "bad", "disk_format": "qcow2"}}
            resp = await api.post("p1", f"/volumes/{vol['id']}/action", action)
            assert resp.status_code == 202, resp.text
            failed = resp.json()["os-volume_upload_image"]["image_id"]
            # The flow deletes the image before it lets the volume go.
            await api.wait_status("p1", "volumes", vol["id"], "available")
            assert failed not in fake.images
            assert _leftovers(api) == []

            cases = [
                ({"os-volume_upload_image": {}}, 400),
                ({"os-volume_upload_image": {"image_name": "x", "disk_format": "ami"}}, 400),
                ({"os-volume_upload_image": {"image_name": "x", "bogus": 1}}, 400),
                ({"os-volume_upload_image": "x"}, 400),
            ]
            for body, code in cases:
                resp = await api.post("p1", f"/volumes/{vol['id']}/action", body)
                assert resp.status_code == code, (body, resp.text)
            missing = "00000000-0000-0000-0000-000000000000"
            resp = await api.post("p1", f"/volumes/{missing}/action", cases[1][0])
            assert resp.status_code == 404
            # An attached volume needs force.
            connector = {"initiator": api.names.initiator(), "host": "cn1", "ip": "127.0.0.1"}
            await api.call("p1", "reserve", volume_id=copy["id"])
            await api.call("p1", "initialize_connection", volume_id=copy["id"], connector=connector)
            await api.call(
                "p1", "attach", volume_id=copy["id"], server_id="s1", mountpoint="/dev/vdb",
                host="cn1",
            )  # fmt: skip
            action = {"os-volume_upload_image": {"image_name": "att"}}
            resp = await api.post("p1", f"/volumes/{copy['id']}/action", action)
            assert resp.status_code == 400 and "in-use" in resp.text
            assert len(fake.images) == 1
            assert (await api.audit())["findings"] == []
