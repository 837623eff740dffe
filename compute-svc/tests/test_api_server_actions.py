"""Everyday server actions through compute-api and the real compute-agent on libvirt's
test:///default hypervisor (no guest runs; the domain's state is libvirt's own): pause
and unpause, suspend (a managed save) and resume, lock and unlock, resize with confirm
and revert, rebuild. Each checks the status, the instance action and the event, what
the domain is on the host, and that a wrong state answers 409."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, private_vhost
from test_api_agent_testdriver import _stack

from common_rpc.testing import wait_for


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture
async def lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        yield await _stack(tmp_path, amqp_url, stack)


async def _image(api: Any, name: str = "k") -> dict[str, Any]:
    ramdisk = await api.image("p1", b"initramfs", disk_format="ari", container_format="ari")
    return await api.image(
        "p1",
        b"vmlinuz-" + name.encode(),
        name=name,
        disk_format="aki",
        container_format="aki",
        ramdisk_id=ramdisk["id"],
        os_command_line="console=ttyS0",
    )


async def _boot(lab: dict[str, Any], **extra: Any) -> tuple[str, dict[str, Any]]:
    api, network = lab["api"], lab["network"]
    flavor = await api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    kernel = await _image(api)
    net = (await network.post("p1", "/v2.0/networks", {"network": {"name": "n1"}})).json()
    subnet = {"subnet": {"network_id": net["network"]["id"], "cidr": "10.7.0.0/24"}}
    assert (await network.post("p1", "/v2.0/subnets", subnet)).status_code == 201
    body = {
        "server": {
            "name": "acts",
            "flavorRef": flavor["id"],
            "imageRef": kernel["id"],
            "networks": [{"uuid": net["network"]["id"]}],
            **extra,
        }
    }
    sid = (await api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]
    server = await _settled(api, sid, "ACTIVE")
    return sid, server


async def _settled(api: Any, sid: str, wanted: str, project: str = "p1") -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        server = (await api.get(project, f"/v2.1/servers/{sid}", *_roles(project))).json()
        server = server["server"]
        if server["OS-EXT-STS:task_state"] is None and server["status"] in (wanted, "ERROR"):
            return server
        return None

    server = await wait_for(probe, timeout=30)
    assert server["status"] == wanted, server.get("fault")
    return server


def _roles(project: str) -> tuple[str, ...]:
    return ADMIN if project == "admin" else ()


async def _act(api: Any, sid: str, body: dict[str, Any], project: str = "p1") -> Any:
    return await api.post(project, f"/v2.1/servers/{sid}/action", body, *_roles(project))


async def _actions(api: Any, sid: str) -> list[tuple[str, str | None]]:
    resp = await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")
    return [(a["action"], a["message"]) for a in resp.json()["instanceActions"]]


def _domain_state(agent: Any, sid: str) -> tuple[int, bool]:
    """The domain's libvirt state and whether it has a managed save image."""
    dom = agent.host.driver._require(sid)
    return dom.state()[0], bool(dom.hasManagedSaveImage(0))


async def test_pause_unpause_suspend_resume(lab: dict[str, Any]) -> None:
    import libvirt

    api, agent = lab["api"], lab["agent"]
    sid, _ = await _boot(lab)
    # Unpause or resume of a running server: 409 in Nova's words.
    resp = await _act(api, sid, {"unpause": None})
    assert resp.status_code == 409 and "Cannot 'unpause'" in resp.text, resp.text
    assert (await _act(api, sid, {"resume": None})).status_code == 409

    assert (await _act(api, sid, {"pause": None})).status_code == 202
    server = await _settled(api, sid, "PAUSED")
    assert (server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]) == ("paused", 3)
    assert _domain_state(agent, sid) == (libvirt.VIR_DOMAIN_PAUSED, False)
    assert (await _act(api, sid, {"os-stop": None})).status_code == 409
    # The reconcile leaves a paused guest paused.
    agent.host.touched.clear()
    result = await agent.reconciler.run_once()
    assert result["removed"] == [] and result["power_changes"] == []
    assert (await _act(api, sid, {"unpause": None})).status_code == 202
    server = await _settled(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == 1
    assert _domain_state(agent, sid) == (libvirt.VIR_DOMAIN_RUNNING, False)

    assert (await _act(api, sid, {"suspend": None})).status_code == 202
    server = await _settled(api, sid, "SUSPENDED")
    assert (server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]) == ("suspended", 4)
    assert _domain_state(agent, sid) == (libvirt.VIR_DOMAIN_SHUTOFF, True)
    agent.host.touched.clear()
    result = await agent.reconciler.run_once()
    assert result["removed"] == [] and result["power_changes"] == []
    assert (await _act(api, sid, {"resume": None})).status_code == 202
    await _settled(api, sid, "ACTIVE")
    assert _domain_state(agent, sid) == (libvirt.VIR_DOMAIN_RUNNING, False)

    done = await _actions(api, sid)
    assert done[:4] == [("resume", None), ("suspend", None), ("unpause", None), ("pause", None)]
    # A paused server can be deleted; nothing is left on the host.
    assert (await _act(api, sid, {"pause": None})).status_code == 202
    await _settled(api, sid, "PAUSED")
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def gone() -> bool:
        return (await api.get("p1", f"/v2.1/servers/{sid}")).status_code == 404

    await wait_for(gone, timeout=30)
    assert (await agent.host.inventory()).domains == []


async def test_power_action_past_its_deadline_is_swept(lab: dict[str, Any]) -> None:
    """A pause whose flow died (here: the task never started) ends by the sweeper with
    the status it had and the action's fault; nothing stays half-way."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from compute_svc.db.models import Server

    api = lab["api"]
    sid, _ = await _boot(lab)
    deps = api.app.state.deps
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with deps.runtime.sessions.begin() as session:
        await session.execute(
            update(Server)
            .where(Server.id == sid)
            .values(task_state="pausing", task_owner="dead", task_deadline=past)
        )
    assert await deps.runtime.sweeper.sweep_once() >= 1
    server = await _settled(api, sid, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None


async def test_lock_and_unlock(lab: dict[str, Any]) -> None:
    api = lab["api"]
    sid, _ = await _boot(lab)
    path = f"/v2.1/servers/{sid}"
    assert (await _act(api, sid, {"lock": {"bogus": 1}})).status_code == 400
    assert (await _act(api, sid, {"lock": None})).status_code == 202
    # A member's actions, delete and metadata are refused while it is locked.
    resp = await _act(api, sid, {"os-stop": None})
    assert resp.status_code == 409 and f"Instance {sid} is locked" in resp.text, resp.text
    assert (await _act(api, sid, {"pause": None})).status_code == 409
    assert (await api.delete("p1", path)).status_code == 409
    assert (await api.put("p1", f"{path}/metadata", {"metadata": {"a": "b"}})).status_code == 409
    # Reading is fine; another project sees nothing.
    assert (await _act(api, sid, {"os-getConsoleOutput": {}})).status_code == 200
    assert (await _act(api, sid, {"unlock": None}, project="p2")).status_code == 404
    # An admin is not held by the lock.
    assert (await _act(api, sid, {"pause": None}, project="admin")).status_code == 202
    await _settled(api, sid, "PAUSED")
    # The owner unlocks its own lock.
    assert (await _act(api, sid, {"unlock": None})).status_code == 202
    assert (await _act(api, sid, {"unpause": None})).status_code == 202
    await _settled(api, sid, "ACTIVE")
    # An admin's lock with a reason: only an admin may unlock it.
    body = {"lock": {"locked_reason": "maintenance"}}
    assert (await _act(api, sid, body, project="admin")).status_code == 202
    resp = await _act(api, sid, {"unlock": None})
    assert resp.status_code == 403 and "unlock_override" in resp.text, resp.text
    async with api.app.state.deps.runtime.sessions() as session:
        from compute_svc.db.models import Server

        row = await session.get(Server, sid)
        assert row is not None and (row.locked_by, row.locked_reason) == ("admin", "maintenance")
    assert (await _act(api, sid, {"unlock": None}, project="admin")).status_code == 202
    assert (await api.delete("p1", path)).status_code == 204


async def _usage(api: Any) -> tuple[int, int]:
    hyper = (await api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
    [row] = hyper["hypervisors"]
    return row["vcpus_used"], row["memory_mb_used"]


async def _quota_used(api: Any) -> tuple[int, int]:
    absolute = (await api.get("p1", "/v2.1/limits")).json()["limits"]["absolute"]
    return absolute["totalCoresUsed"], absolute["totalRAMUsed"]


async def test_resize_on_one_host_confirm_and_revert(lab: dict[str, Any]) -> None:
    api, agent = lab["api"], lab["agent"]
    sid, _ = await _boot(lab)
    big = await api.flavor("m1.big", ram=256, vcpus=2, disk=2)
    small_disk = await api.flavor("m1.flat", ram=128, vcpus=1, disk=0)
    base = await _usage(api)
    assert (await _act(api, sid, {"resize": {}})).status_code == 400
    resp = await _act(api, sid, {"resize": {"flavorRef": "nope"}})
    assert resp.status_code == 400, resp.text
    resp = await _act(api, sid, {"resize": {"flavorRef": small_disk["id"]}})
    assert resp.status_code == 400 and "resize disk down" in resp.text, resp.text
    assert (await _act(api, sid, {"confirmResize": None})).status_code == 409

    assert await _quota_used(api) == (1, 128)
    # Over the project's cores quota: 403 as Nova's upsize check, nothing moves.
    body = {"quota_set": {"cores": 1}}
    assert (await api.put("admin", "/v2.1/os-quota-sets/p1", body, *ADMIN)).status_code == 200
    resp = await _act(api, sid, {"resize": {"flavorRef": big["id"]}})
    assert resp.status_code == 403 and "Quota exceeded for cores" in resp.text, resp.text
    body = {"quota_set": {"cores": 20}}
    assert (await api.put("admin", "/v2.1/os-quota-sets/p1", body, *ADMIN)).status_code == 200
    await _settled(api, sid, "ACTIVE")

    # Resize, then revert: the old size and disk are back, the new claim given back.
    disk = agent.host.driver.store.disk(sid)
    disk.with_name("marker").write_text("before")
    assert (await _act(api, sid, {"resize": {"flavorRef": big["id"]}})).status_code == 202
    server = await _settled(api, sid, "VERIFY_RESIZE")
    assert server["flavor"]["id"] == big["id"] and server["OS-EXT-STS:vm_state"] == "resized"
    info = agent.host.driver._require(sid).info()
    assert (info[1] // 1024, info[3]) == (256, 2)
    # Both sizes are held on the host while both disks exist, each once.
    assert await _usage(api) == (base[0] + 2, base[1] + 256)
    assert await _quota_used(api) == (2, 256)  # the project's quota: the new size's
    assert (await _act(api, sid, {"revertResize": None})).status_code == 202
    server = await _settled(api, sid, "ACTIVE")
    assert server["flavor"]["id"] != big["id"]
    info = agent.host.driver._require(sid).info()
    assert (info[0], info[1] // 1024, info[3]) == (1, 128, 1)
    assert disk.with_name("marker").read_text() == "before"
    assert await _usage(api) == base
    assert await _quota_used(api) == (1, 128)
    assert not agent.host.driver.store.resize_copy(sid).exists()

    # Resize, then confirm: the claim is the new size's alone.
    assert (await _act(api, sid, {"resize": {"flavorRef": big["id"]}})).status_code == 202
    await _settled(api, sid, "VERIFY_RESIZE")
    assert (await _act(api, sid, {"confirmResize": None})).status_code == 204
    server = await _settled(api, sid, "ACTIVE")
    assert server["flavor"]["id"] == big["id"]
    assert await _usage(api) == (base[0] + 1, base[1] + 128)
    assert await _quota_used(api) == (2, 256)
    assert not agent.host.driver.store.resize_copy(sid).exists()
    info = agent.host.driver._require(sid).info()
    assert (info[0], info[1] // 1024, info[3]) == (1, 256, 2)
    done = [a for a, _ in await _actions(api, sid)]
    assert done[:4] == ["confirmResize", "resize", "revertResize", "resize"]
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204


async def test_rebuild_with_another_image_keeps_ports(lab: dict[str, Any]) -> None:
    api, agent, network = lab["api"], lab["agent"], lab["network"]
    sid, before = await _boot(lab)
    other = await _image(api, "other")
    ports = (await network.get("admin", f"/v2.0/ports?device_id={sid}", *ADMIN)).json()["ports"]
    assert (await _act(api, sid, {"rebuild": {}})).status_code == 400
    resp = await _act(api, sid, {"rebuild": {"imageRef": "0" * 32}})
    assert resp.status_code == 400, resp.text
    body = {"rebuild": {"imageRef": other["id"], "name": "again", "adminPass": "s3cret"}}
    resp = await _act(api, sid, body)
    assert resp.status_code == 202, resp.text
    shown = resp.json()["server"]
    # Nova's rebuild view: the update's keys and the password, no extended attributes.
    assert not [k for k in shown if k.startswith(("OS-EXT", "OS-SRV-USG"))], shown
    for entries in shown["addresses"].values():
        assert all(set(a) == {"addr", "version"} for a in entries), shown["addresses"]
    assert (shown["adminPass"], shown["image"]["id"], shown["status"]) == (
        "s3cret",
        other["id"],
        "REBUILD",
    )
    server = await _settled(api, sid, "ACTIVE")
    assert server["name"] == "again" and server["addresses"] == before["addresses"]
    xml = agent.host.driver._require(sid).XMLDesc(0)
    assert other["id"] in xml
    after = (await network.get("admin", f"/v2.0/ports?device_id={sid}", *ADMIN)).json()["ports"]
    assert [p["id"] for p in after] == [p["id"] for p in ports]
    assert (await _actions(api, sid))[0] == ("rebuild", None)
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
