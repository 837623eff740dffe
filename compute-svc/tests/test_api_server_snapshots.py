"""Server snapshots (``createImage``) and shelving through compute-api and the real
compute-agent on libvirt's test:///default hypervisor: no guest runs, but the disks are
real qcow2 files made by qemu-img, so a snapshot is checked byte for byte (qemu-io) as a
standalone qcow2 holding the base image's data and what was written over it."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, private_vhost
from sqlalchemy import update
from test_api_agent_testdriver import _stack

from common_rpc.testing import wait_for
from compute_svc.db.models import Image, Server


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture
async def lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        yield await _stack(tmp_path, amqp_url, stack)


def _qemu_io(path: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _holds(path: Path, pattern: int, offset: str) -> bool:
    """Whether 64 KiB at ``offset`` all hold the byte ``pattern`` (qemu-io's own check)."""
    out = _qemu_io(path, f"read -P {pattern:#x} {offset} 64k")
    return out.returncode == 0 and "read 65536/65536" in out.stdout


def _info(path: Path) -> str:
    return subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], capture_output=True, text=True
    ).stdout


def _qcow2(tmp_path: Path) -> bytes:
    """A 64 MiB qcow2 with 0x5a in its first 64 KiB."""
    path = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    assert _qemu_io(path, "write -P 0x5a 0 64k").returncode == 0
    return path.read_bytes()


async def _boot(lab: dict[str, Any], image_id: str, name: str = "snap") -> str:
    api, network = lab["api"], lab["network"]
    flavor = lab.get("flavor") or await api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    lab["flavor"] = flavor
    if "net" not in lab:
        net = (await network.post("p1", "/v2.0/networks", {"network": {"name": "n1"}})).json()
        subnet = {"subnet": {"network_id": net["network"]["id"], "cidr": "10.8.0.0/24"}}
        assert (await network.post("p1", "/v2.0/subnets", subnet)).status_code == 201
        lab["net"] = net["network"]["id"]
    body = {
        "server": {
            "name": name,
            "flavorRef": flavor["id"],
            "imageRef": image_id,
            "networks": [{"uuid": lab["net"]}],
        }
    }
    resp = await api.post("p1", "/v2.1/servers", body)
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]
    await _settled(api, sid, "ACTIVE")
    return sid


async def _settled(api: Any, sid: str, wanted: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        if server["OS-EXT-STS:task_state"] is None and server["status"] in (wanted, "ERROR"):
            return server
        return None

    server = await wait_for(probe, timeout=30)
    assert server["status"] == wanted, server.get("fault")
    return server


async def _act(api: Any, sid: str, body: dict[str, Any], project: str = "p1") -> Any:
    roles = ADMIN if project == "admin" else ()
    return await api.post(project, f"/v2.1/servers/{sid}/action", body, *roles)


async def _actions(api: Any, sid: str) -> list[tuple[str, str | None]]:
    resp = await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")
    return [(a["action"], a["message"]) for a in resp.json()["instanceActions"]]


async def _image_active(api: Any, image_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        image = (await api.get("p1", f"/image/v2/images/{image_id}")).json()
        return image if image["status"] == "active" else None

    return await wait_for(probe, timeout=30)


async def test_create_image_is_a_standalone_copy_that_boots(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    import libvirt

    api, agent = lab["api"], lab["agent"]
    base = await api.image("p1", _qcow2(tmp_path), name="base", min_ram=64)
    sid = await _boot(lab, base["id"])
    # What the guest wrote over its base: only in the server's overlay.
    disk = agent.host.driver.store.disk(sid)
    assert _qemu_io(disk, "write -P 0xc3 1M 64k").returncode == 0

    assert (await _act(api, sid, {"createImage": {}})).status_code == 400
    bad = {"createImage": {"name": "x", "bogus": 1}}
    assert (await _act(api, sid, bad)).status_code == 400
    assert (await _act(api, sid, {"createImage": {"name": "x"}}, project="p2")).status_code == 404

    body = {"createImage": {"name": "snap-1", "metadata": {"purpose": "test"}}}
    resp = await _act(api, sid, body)
    assert resp.status_code == 202, resp.text
    location = resp.headers["Location"]
    assert "/image/v2/images/" in location
    image_id = location.rsplit("/", 1)[-1]
    image = await _image_active(api, image_id)
    assert (image["name"], image["owner"], image["visibility"]) == ("snap-1", "p1", "private")
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
    assert (image["image_type"], image["instance_uuid"]) == ("snapshot", sid)
    assert (image["base_image_ref"], image["purpose"]) == (base["id"], "test")
    assert (image["min_disk"], image["min_ram"]) == (1, 64)
    server = await _settled(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == 1
    assert agent.host.driver._require(sid).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert (await _actions(api, sid))[0] == ("createImage", None)

    # The stored snapshot has no backing file and holds both the base's and the
    # overlay's data; its hashes are the file's.
    data = api.app.state.deps.images.path(image_id)
    info = _info(data)
    assert '"backing-filename"' not in info and '"format": "qcow2"' in info
    assert _holds(data, 0x5A, "0") and _holds(data, 0xC3, "1M")
    assert not _holds(data, 0xC3, "0")  # the check can fail
    assert image["size"] == data.stat().st_size
    assert not api.app.state.deps.images.staging(image_id).exists()

    # A paused server is snapshotted and stays paused.
    assert (await _act(api, sid, {"pause": None})).status_code == 202
    await _settled(api, sid, "PAUSED")
    resp = await _act(api, sid, {"createImage": {"name": "snap-2"}})
    assert resp.status_code == 202, resp.text
    await _image_active(api, resp.headers["Location"].rsplit("/", 1)[-1])
    await _settled(api, sid, "PAUSED")
    assert agent.host.driver._require(sid).state()[0] == libvirt.VIR_DOMAIN_PAUSED

    # The snapshot boots: its server's disk is an overlay on the snapshot's data.
    other = await _boot(lab, image_id, name="from-snap")
    other_disk = agent.host.driver.store.disk(other)
    assert _holds(other_disk, 0x5A, "0") and _holds(other_disk, 0xC3, "1M")
    for server_id in (sid, other):
        assert (await api.delete("p1", f"/v2.1/servers/{server_id}")).status_code == 204


async def test_failed_or_expired_snapshot_deletes_its_image(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    """A copy that fails: the image goes, the server stays ACTIVE with the action's
    fault; a shelve whose copy fails leaves it SHUTOFF with no image. A snapshot whose
    flow died: the sweeper clears the task, keeps the status and
    deletes the unfinished image; a task in the way answers 409 before that."""
    api, agent = lab["api"], lab["agent"]
    base = await api.image("p1", _qcow2(tmp_path), name="base")
    sid = await _boot(lab, base["id"])
    before = {i["id"] for i in (await api.get("p1", "/image/v2/images")).json()["images"]}
    # The host cannot copy a disk that is not there.
    agent.host.driver.store.disk(sid).unlink()
    resp = await _act(api, sid, {"createImage": {"name": "doomed"}})
    assert resp.status_code == 202, resp.text
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]

    async def failed() -> str | None:
        action, message = (await _actions(api, sid))[0]
        return message if action == "createImage" and message else None

    message = await wait_for(failed, timeout=30)
    assert "no root disk" in message, message
    await _settled(api, sid, "ACTIVE")
    assert (await api.get("p1", f"/image/v2/images/{image_id}")).status_code == 404
    after = {i["id"] for i in (await api.get("p1", "/image/v2/images")).json()["images"]}
    assert after == before
    store = api.app.state.deps.images
    assert not store.path(image_id).exists() and not store.staging(image_id).exists()

    # A shelve whose copy fails: SHUTOFF (stopped for the copy) on its host, no image.
    assert (await _act(api, sid, {"shelve": None})).status_code == 202

    async def shelve_failed() -> str | None:
        action, message = (await _actions(api, sid))[0]
        return message if action == "shelve" and message else None

    assert "no root disk" in await wait_for(shelve_failed, timeout=30)
    await _settled(api, sid, "SHUTOFF")
    assert (await api.get("p1", "/image/v2/images?name=snap-shelved")).json()["images"] == []
    after = {i["id"] for i in (await api.get("p1", "/image/v2/images")).json()["images"]}
    assert after == before

    # A dead flow's snapshot, half copied.
    deps = api.app.state.deps
    past = datetime.now(UTC) - timedelta(seconds=1)
    image = Image(
        id="6f1c4f57-3e4e-4b8b-9d7c-0b3c9f1a2b3c",
        owner="p1",
        name="left",
        status="saving",
        disk_format="qcow2",
        container_format="bare",
        visibility="private",
        properties={"image_type": "snapshot", "instance_uuid": sid},
    )
    async with deps.runtime.sessions.begin() as session:
        session.add(image)
        await session.execute(
            update(Server)
            .where(Server.id == sid)
            .values(task_state="image_snapshot", task_owner="dead", task_deadline=past)
        )
    store.staging(image.id).write_bytes(b"half a disk")
    resp = await _act(api, sid, {"createImage": {"name": "again"}})
    assert resp.status_code == 409 and "image_snapshot" in resp.text, resp.text
    assert await deps.runtime.sweeper.sweep_once() >= 1
    server = await _settled(api, sid, "SHUTOFF")
    assert server["OS-EXT-STS:task_state"] is None
    assert (await api.get("p1", f"/image/v2/images/{image.id}")).status_code == 404
    assert not store.staging(image.id).exists()
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204


async def _usage(api: Any) -> tuple[int, int]:
    hyper = (await api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
    [row] = hyper["hypervisors"]
    return row["vcpus_used"], row["memory_mb_used"]


async def _ports(lab: dict[str, Any], sid: str) -> list[str]:
    path = f"/v2.0/ports?device_id={sid}"
    return [p["id"] for p in (await lab["network"].get("admin", path, *ADMIN)).json()["ports"]]


async def _audit_clean(api: Any) -> None:
    """``stackling audit``'s view: every claim, usage row and domain explained."""
    from compute_svc.domain.audit import audit

    report = await audit(api.app.state.deps)
    assert report.findings == [] and "domains" in report.checked, report


async def _host(api: Any, sid: str) -> str | None:
    server = (await api.get("admin", f"/v2.1/servers/{sid}", *ADMIN)).json()["server"]
    return server["OS-EXT-SRV-ATTR:host"]


async def _shelved_image(api: Any, name: str) -> dict[str, Any]:
    found = (await api.get("p1", f"/image/v2/images?name={name}-shelved")).json()["images"]
    [image] = found
    return image


async def test_shelve_offloads_at_once_and_unshelve_brings_the_disk_back(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    """Nova's default shelved_offload_time 0: shelve ends SHELVED_OFFLOADED on no host,
    the domain, its files and the claim gone; unshelve schedules it again and boots the
    shelved image, which holds what the guest wrote; ports and addresses are kept."""
    api, agent = lab["api"], lab["agent"]
    base = await api.image("p1", _qcow2(tmp_path), name="base")
    empty = await _usage(api)
    sid = await _boot(lab, base["id"])
    before = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
    ports = await _ports(lab, sid)
    assert _qemu_io(agent.host.driver.store.disk(sid), "write -P 0xc3 1M 64k").returncode == 0
    assert (await _act(api, sid, {"unshelve": None})).status_code == 409
    assert (await _act(api, sid, {"shelve": {"x": 1}})).status_code == 400

    assert (await _act(api, sid, {"shelve": None})).status_code == 202
    server = await _settled(api, sid, "SHELVED_OFFLOADED")
    assert await _host(api, sid) is None
    assert (server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]) == (
        "shelved_offloaded",
        0,
    )
    assert (await agent.host.inventory()).domains == []
    assert not agent.host.driver.store.server_dir(sid).exists()
    assert await _usage(api) == empty
    image = await _shelved_image(api, "snap")
    assert (image["status"], image["image_type"], image["instance_uuid"]) == (
        "active",
        "snapshot",
        sid,
    )
    assert (await _actions(api, sid))[0] == ("shelve", None)
    assert (await _act(api, sid, {"os-start": None})).status_code == 409
    await _audit_clean(api)

    assert (await _act(api, sid, {"unshelve": None})).status_code == 202
    server = await _settled(api, sid, "ACTIVE")
    assert await _host(api, sid) == lab["host"]
    assert server["addresses"] == before["addresses"]
    assert server["image"]["id"] == base["id"]
    assert await _ports(lab, sid) == ports
    assert await _usage(api) != empty
    disk = agent.host.driver.store.disk(sid)
    assert _holds(disk, 0x5A, "0") and _holds(disk, 0xC3, "1M")
    assert (await api.get("p1", f"/image/v2/images/{image['id']}")).status_code == 404
    assert (await _actions(api, sid))[0] == ("unshelve", None)
    await _audit_clean(api)
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204


@pytest.fixture
async def kept_lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        yield await _stack(tmp_path, amqp_url, stack, shelved_offload_time=-1)


async def test_shelved_server_kept_on_its_host_until_offloaded(
    kept_lab: dict[str, Any], tmp_path: Path
) -> None:
    """shelved_offload_time -1: SHELVED keeps its stopped domain and claim; unshelve
    starts it in place; shelveOffload (an admin's) or the offload timer (the sweeper)
    offload it; a deleted shelved server takes its image with it."""
    import libvirt

    lab = kept_lab
    api, agent = lab["api"], lab["agent"]
    base = await api.image("p1", _qcow2(tmp_path), name="base")
    empty = await _usage(api)
    sid = await _boot(lab, base["id"], name="kept")
    held = await _usage(api)

    assert (await _act(api, sid, {"shelve": None})).status_code == 202
    await _settled(api, sid, "SHELVED")
    assert agent.host.driver._require(sid).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert await _usage(api) == held
    await _audit_clean(api)
    # The reconcile leaves a shelved guest stopped.
    agent.host.touched.clear()
    result = await agent.reconciler.run_once()
    assert result["removed"] == [] and result["power_changes"] == []
    image = await _shelved_image(api, "kept")
    assert (await _act(api, sid, {"unshelve": {}})).status_code == 202
    await _settled(api, sid, "ACTIVE")
    assert agent.host.driver._require(sid).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert (await api.get("p1", f"/image/v2/images/{image['id']}")).status_code == 404

    assert (await _act(api, sid, {"shelveOffload": None}, project="admin")).status_code == 409
    assert (await _act(api, sid, {"shelve": None})).status_code == 202
    await _settled(api, sid, "SHELVED")
    assert (await _act(api, sid, {"shelveOffload": None}, project="admin")).status_code == 202
    await _settled(api, sid, "SHELVED_OFFLOADED")
    assert (await agent.host.inventory()).domains == []
    assert await _usage(api) == empty
    done = [a for a, _ in await _actions(api, sid)]
    assert done[:4] == ["shelveOffload", "shelve", "unshelve", "shelve"]
    assert (await _act(api, sid, {"unshelve": None})).status_code == 202
    await _settled(api, sid, "ACTIVE")
    assert await _usage(api) == held

    # The offload timer: a SHELVED row's deadline with no task, met by the sweeper.
    assert (await _act(api, sid, {"shelve": None})).status_code == 202
    await _settled(api, sid, "SHELVED")
    deps = api.app.state.deps
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with deps.runtime.sessions.begin() as session:
        await session.execute(update(Server).where(Server.id == sid).values(task_deadline=past))
    assert await deps.runtime.sweeper.sweep_once() >= 1
    await _settled(api, sid, "SHELVED_OFFLOADED")
    assert await _usage(api) == empty
    image = await _shelved_image(api, "kept")
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def image_gone() -> bool:
        resp = await api.get("p1", f"/image/v2/images/{image['id']}")
        return resp.status_code == 404

    await wait_for(image_gone, timeout=30)
    assert not deps.images.path(image["id"]).exists()


async def test_kernel_booted_server_keeps_its_disk_through_shelve(lab: dict[str, Any]) -> None:
    """A server booted from a kernel (and ramdisk) has a blank root disk of its own; its
    snapshot keeps the kernel's properties and its disk, and the unshelved (or the
    snapshot's) server boots that kernel over that disk, not a blank one again."""
    api, agent = lab["api"], lab["agent"]
    ramdisk = await api.image("p1", b"initramfs", disk_format="ari", container_format="ari")
    kernel = await api.image(
        "p1",
        b"vmlinuz",
        name="k",
        disk_format="aki",
        container_format="aki",
        ramdisk_id=ramdisk["id"],
        os_command_line="console=ttyS0",
    )
    sid = await _boot(lab, kernel["id"], name="kern")
    assert _qemu_io(agent.host.driver.store.disk(sid), "write -P 0xc3 1M 64k").returncode == 0
    assert (await _act(api, sid, {"shelve": None})).status_code == 202
    await _settled(api, sid, "SHELVED_OFFLOADED")
    image = await _shelved_image(api, "kern")
    assert (image["kernel_id"], image["ramdisk_id"]) == (kernel["id"], ramdisk["id"])
    assert (await _act(api, sid, {"unshelve": None})).status_code == 202
    await _settled(api, sid, "ACTIVE")
    xml = agent.host.driver._require(sid).XMLDesc(0)
    assert f"<kernel>{agent.host.driver.store.base_dir / image['id']}.kernel</kernel>" in xml
    assert _holds(agent.host.driver.store.disk(sid), 0xC3, "1M")
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
