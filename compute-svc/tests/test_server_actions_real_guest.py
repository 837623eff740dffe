"""Everyday server actions on one real QEMU guest (TCG), checked in libvirt at each step.

compute-api in-process and a real compute-agent on qemu:///system; the image is the
stackling-tiny disk (``disk.qcow2``: SYSLINUX boots it from the server's qcow2 overlay).
The guest's user data reports its CPUs and memory on the console and writes 64 KiB of
0xa5 at 512 MiB into its root disk, then reads it back; so one server goes through:

pause (libvirt PAUSED) and unpause (RUNNING); suspend (a managed save: SHUTOFF with a save
image) and resume (RUNNING, the save image gone); resize to 2 vCPUs and 192 MiB and
confirm (the domain's definition, and the guest's own count of CPUs and memory after it
booted again); rebuild from another image (the domain's disk now on that image's base);
createImage (the guest paused for the copy and running after; the image a standalone
qcow2 holding what the guest wrote). A second server boots from the snapshot and reads
back the guest's bytes, and again after a shelve (offloaded: no domain) and unshelve.
After the deletes nothing is left.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from api_helpers import Api, compute_api, private_vhost
from virt_fixtures import URI, instances_dir, leftovers, prepare_guest, sweep, unique_prefix

from common_rpc.testing import wait_for
from compute_svc.agent.main import ComputeAgent
from compute_svc.agent.main import build as build_agent
from compute_svc.agent.settings import AgentSettings

MARK_OFFSET = 512 * 1024 * 1024
MARK_MD5 = hashlib.md5(b"\xa5" * 65536, usedforsecurity=False).hexdigest()
WRITER = f"""#!/bin/sh
echo "stackling-test: cpus $(grep -c ^processor /proc/cpuinfo) mem $(awk '/MemTotal/{{print $2}}' /proc/meminfo)"
head -c 65536 /dev/zero | tr '\\000' '\\245' | dd of=/dev/vda bs=65536 seek={MARK_OFFSET // 65536} 2>/dev/null
sync
echo "stackling-test: mark $(dd if=/dev/vda bs=65536 skip={MARK_OFFSET // 65536} count=1 2>/dev/null | md5sum)"
"""  # noqa: E501
READER = f"""#!/bin/sh
echo "stackling-test: mark $(dd if=/dev/vda bs=65536 skip={MARK_OFFSET // 65536} count=1 2>/dev/null | md5sum)"
"""  # noqa: E501


@dataclass
class Host:
    api: Api
    agent: ComputeAgent
    prefix: str

    def domain(self, sid: str) -> libvirt.virDomain:
        return self.agent.host.driver._require(sid)

    def state(self, sid: str) -> tuple[int, bool]:
        """The domain's libvirt state and whether it has a managed save image."""
        dom = self.domain(sid)
        return dom.state()[0], bool(dom.hasManagedSaveImage(0))


@pytest.fixture(scope="module", name="guest_dir")
def guest_dir_fixture() -> Path:
    guest = prepare_guest()
    if not (guest / "disk.qcow2").exists():
        pytest.skip("disk.qcow2 not built (syslinux, mtools, dosfstools missing)")
    return guest


@pytest.fixture(name="host")
async def host_fixture(tmp_path: Path, guest_dir: Path) -> AsyncIterator[Host]:
    prefix = unique_prefix()
    root = instances_dir(prefix)
    try:
        with private_vhost() as amqp_url:
            async with AsyncExitStack() as stack:
                api = await stack.enter_async_context(compute_api(tmp_path / "api", amqp_url))
                agent = build_agent(
                    AgentSettings(
                        host=f"{prefix}cn",
                        data_dir=tmp_path / "agent",
                        amqp_url=amqp_url,
                        agent_domain_prefix=prefix,
                        agent_instances_dir=root,
                        agent_reconcile_interval=3600,
                        agent_shutdown_timeout=0,
                        log_json=False,
                    )
                )
                await agent.start()
                stack.push_async_callback(agent.stop)
                registry = api.app.state.deps.agents
                await wait_for(lambda: registry.alive_hosts("compute-agent"), timeout=20)
                yield Host(api, agent, prefix)
    finally:
        left = leftovers(URI, prefix, root)
        sweep(URI, prefix, root)
    assert left == {"domains": [], "secrets": [], "files": []}, left


async def _settled(api: Api, sid: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        if server["OS-EXT-STS:task_state"] is None and server["status"] in (wanted, "ERROR"):
            return server
        return None

    server = await wait_for(probe, timeout=timeout, interval=0.2)
    assert server["status"] == wanted, server.get("fault")
    return server


async def _act(api: Api, sid: str, body: dict[str, Any]) -> Any:
    resp = await api.post("p1", f"/v2.1/servers/{sid}/action", body)
    assert resp.status_code in (202, 204), resp.text
    return resp


async def _console(host: Host, sid: str, marker: str, timeout: float = 120) -> str:
    """The guest's console (this boot's: the log starts again at each QEMU start) once it
    shows ``marker``."""
    agent = host.api.app.state.deps.agent(host.agent.settings.host)
    deadline = time.monotonic() + timeout
    while True:
        out = (await agent.console_output(sid, None)).output
        if marker in out:
            return out
        assert time.monotonic() < deadline, f"no {marker!r} on the console:\n{out}"
        await asyncio.sleep(0.5)


def _reported(console: str) -> tuple[int, int]:
    """The guest's own count: (CPUs, MemTotal in KiB)."""
    line = next(x for x in console.splitlines() if x.startswith("stackling-test: cpus"))
    words = line.split()
    return int(words[2]), int(words[4])


def _info(path: Path) -> str:
    return subprocess.run(
        ["qemu-img", "info", "-U", str(path)], capture_output=True, text=True, timeout=30
    ).stdout


def _holds_mark(path: Path) -> bool:
    out = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-r", "-c", f"read -P 0xa5 {MARK_OFFSET} 64k", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.returncode == 0 and "read 65536/65536" in out.stdout


async def _server(host: Host, name: str, flavor: str, image: str, user_data: str) -> str:
    import base64

    body = {
        "server": {
            "name": name,
            "flavorRef": flavor,
            "imageRef": image,
            "networks": "none",
            "user_data": base64.b64encode(user_data.encode()).decode(),
        }
    }
    resp = await host.api.post("p1", "/v2.1/servers", body)
    assert resp.status_code == 202, resp.text
    sid = str(resp.json()["server"]["id"])
    await _settled(host.api, sid, "ACTIVE", timeout=120)
    return sid


@pytest.mark.timeout(300)
async def test_actions_on_one_real_guest(host: Host, guest_dir: Path) -> None:
    api, marks, started = host.api, {}, time.monotonic()

    def mark(step: str) -> None:
        marks[step] = round(time.monotonic() - started, 1)

    disk = (guest_dir / "disk.qcow2").read_bytes()
    image = await api.image("p1", disk, name="tiny-disk")
    other = await api.image("p1", disk, name="tiny-disk-2")
    small = await api.flavor("m1.real", ram=128, vcpus=1, disk=1)
    big = await api.flavor("m1.real2", ram=192, vcpus=2, disk=2)
    sid = await _server(host, "real", small["id"], image["id"], WRITER)
    console = await _console(host, sid, "stackling-test: mark")
    assert "SYSLINUX" in console and f"mark {MARK_MD5}" in console, console
    before = _reported(console)
    assert before[0] == 1
    mark("booted")

    await _act(api, sid, {"pause": None})
    await _settled(api, sid, "PAUSED")
    assert host.state(sid) == (libvirt.VIR_DOMAIN_PAUSED, False)
    await _act(api, sid, {"unpause": None})
    await _settled(api, sid, "ACTIVE")
    assert host.state(sid) == (libvirt.VIR_DOMAIN_RUNNING, False)
    mark("paused and unpaused")

    await _act(api, sid, {"suspend": None})
    await _settled(api, sid, "SUSPENDED")
    assert host.state(sid) == (libvirt.VIR_DOMAIN_SHUTOFF, True)
    await _act(api, sid, {"resume": None})
    await _settled(api, sid, "ACTIVE")
    assert host.state(sid) == (libvirt.VIR_DOMAIN_RUNNING, False)
    mark("suspended and resumed")

    await _act(api, sid, {"resize": {"flavorRef": big["id"]}})
    await _settled(api, sid, "VERIFY_RESIZE", timeout=120)
    await _act(api, sid, {"confirmResize": None})
    server = await _settled(api, sid, "ACTIVE")
    assert server["flavor"]["id"] == big["id"]
    state, max_kib, _mem, vcpus, _cpu = host.domain(sid).info()
    assert (state, max_kib // 1024, vcpus) == (libvirt.VIR_DOMAIN_RUNNING, 192, 2)
    after = _reported(await _console(host, sid, "stackling-test: mark"))
    assert after[0] == 2 and after[1] > before[1] + 32 * 1024, (before, after)
    mark("resized and confirmed")

    await _act(api, sid, {"rebuild": {"imageRef": other["id"]}})
    server = await _settled(api, sid, "ACTIVE", timeout=120)
    assert server["image"]["id"] == other["id"]
    assert host.state(sid) == (libvirt.VIR_DOMAIN_RUNNING, False)
    root = host.agent.host.driver.store.disk(sid)
    info = _info(root)
    assert other["id"] in info, info  # the overlay's base is the new image
    console = await _console(host, sid, "stackling-test: mark")
    assert "SYSLINUX" in console and f"mark {MARK_MD5}" in console, console
    mark("rebuilt")

    # The snapshot: the guest is paused for the copy and runs after; the image holds
    # what the guest wrote.
    resp = await _act(api, sid, {"createImage": {"name": "real-snap"}})
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]

    async def active() -> bool:
        shown = (await api.get("p1", f"/image/v2/images/{image_id}")).json()
        assert shown["status"] in ("queued", "saving", "active"), shown
        return bool(shown["status"] == "active")

    await wait_for(active, timeout=60, interval=0.2)
    await _settled(api, sid, "ACTIVE")
    assert host.state(sid) == (libvirt.VIR_DOMAIN_RUNNING, False)
    stored = api.app.state.deps.images.path(image_id)
    assert _holds_mark(stored)
    assert not _holds_mark(guest_dir / "disk.qcow2")  # the check can fail
    info = _info(stored)
    assert "backing file" not in info, info
    mark("snapshot active")

    # The snapshot boots, and its guest reads back the bytes the first one wrote.
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
    # (its min_disk is the flavor's it was taken at, as Nova's: the small one is 400)
    body = {"server": {"name": "x", "flavorRef": small["id"], "imageRef": image_id}}
    assert (await api.post("p1", "/v2.1/servers", body)).status_code == 400
    copy = await _server(host, "from-snap", big["id"], image_id, READER)
    console = await _console(host, copy, "stackling-test: mark")
    assert "SYSLINUX" in console and f"mark {MARK_MD5}" in console, console
    mark("snapshot booted")

    # Shelved (offloaded at once: no domain left) and unshelved: the guest's disk comes
    # back through the shelved image.
    await _act(api, copy, {"shelve": None})
    await _settled(api, copy, "SHELVED_OFFLOADED", timeout=120)
    assert (await host.agent.host.inventory()).domains == []
    await _act(api, copy, {"unshelve": None})
    await _settled(api, copy, "ACTIVE", timeout=120)
    assert host.state(copy) == (libvirt.VIR_DOMAIN_RUNNING, False)
    console = await _console(host, copy, "stackling-test: mark")
    assert f"mark {MARK_MD5}" in console, console
    mark("shelved and unshelved")
    assert (await api.delete("p1", f"/v2.1/servers/{copy}")).status_code == 204

    async def gone() -> bool:
        return (await host.agent.host.inventory()).domains == []

    await wait_for(gone, timeout=60)
    print("real-guest actions, seconds since start:", marks)
