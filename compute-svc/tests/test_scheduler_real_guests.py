"""Ten boots at once on a real host with room for six: six QEMU guests run, four servers
end in ERROR with Nova's "No valid host" fault, and the host is never oversubscribed.

compute-api in-process and a real compute-agent on qemu:///system (TCG) whose heartbeat
offers 6 vCPUs; the image is stackling-tiny uploaded through the Image API. The claims are
made in compute's database (``scheduler.claim``), so the count of running domains on the
host is the proof: it never exceeds six, and after the deletes nothing is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from api_helpers import ADMIN, Api, compute_api, private_vhost
from virt_fixtures import URI, instances_dir, leftovers, prepare_guest, sweep, unique_prefix

from common_rpc.testing import wait_for
from compute_svc.agent.main import ComputeAgent
from compute_svc.agent.main import build as build_agent
from compute_svc.agent.settings import AgentSettings

ROOM = 6
BOOTS = 10


@dataclass
class Host:
    api: Api
    agent: ComputeAgent
    prefix: str

    def running(self) -> list[str]:
        conn = libvirt.open(URI)
        try:
            return sorted(
                d.name() for d in conn.listAllDomains() if d.name().startswith(self.prefix)
            )
        finally:
            conn.close()


@pytest.fixture(name="host")
async def host_fixture(tmp_path: Path) -> AsyncIterator[Host]:
    prepare_guest()
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
                        agent_capacity_vcpus=ROOM,
                        agent_capacity_ram_mb=ROOM * 256,
                        agent_capacity_disk_gb=100,
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


async def _tiny_image(api: Api, guest_dir: Path) -> str:
    """stackling-tiny as three images of the project: kernel, ramdisk and the machine."""
    kernel = await api.image("p1", (guest_dir / "vmlinuz").read_bytes(), disk_format="aki",
                             container_format="aki")  # fmt: skip
    ramdisk = await api.image("p1", (guest_dir / "initramfs.gz").read_bytes(),
                              disk_format="ari", container_format="ari")  # fmt: skip
    machine = await api.image("p1", b"stackling-tiny", disk_format="ami", container_format="ami",
                              kernel_id=kernel["id"], ramdisk_id=ramdisk["id"])  # fmt: skip
    return str(machine["id"])


async def _settled(api: Api, server_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        server = (await api.get("p1", f"/v2.1/servers/{server_id}")).json()["server"]
        return server if server["status"] in ("ACTIVE", "ERROR") else None

    return await wait_for(probe, timeout=120)


async def test_ten_real_boots_with_room_for_six_run_six_guests(host: Host) -> None:
    api = host.api
    image = await _tiny_image(api, prepare_guest())
    flavor = await api.flavor("m1.room", ram=256, vcpus=1, disk=1)
    body = {
        "server": {
            "name": "many",
            "flavorRef": flavor["id"],
            "imageRef": image,
            "networks": "none",
        }
    }
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, len(await asyncio.to_thread(host.running)))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    try:
        responses = await asyncio.gather(
            *(api.post("p1", "/v2.1/servers", body) for _ in range(BOOTS))
        )
        assert [r.status_code for r in responses] == [202] * BOOTS
        ids = [r.json()["server"]["id"] for r in responses]
        settled = await asyncio.gather(*(_settled(api, sid) for sid in ids))
    finally:
        watcher.cancel()

    active = [s for s in settled if s["status"] == "ACTIVE"]
    errors = [s for s in settled if s["status"] == "ERROR"]
    assert (len(active), len(errors)) == (ROOM, BOOTS - ROOM), [
        (s["status"], s.get("fault")) for s in settled
    ]
    for server in errors:
        assert server["fault"]["message"].startswith("No valid host was found"), server
    names = host.running()
    assert len(names) == ROOM and most == ROOM, (names, most)
    assert names == sorted(host.agent.host.driver.domain_name(s["id"]) for s in active)
    hyper = (await api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
    [row] = hyper["hypervisors"]
    assert (row["vcpus_used"], row["running_vms"]) == (ROOM, ROOM), row

    for sid in ids:
        assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def all_gone() -> bool:
        listed = (await api.get("p1", "/v2.1/servers")).json()["servers"]
        return not listed and not await asyncio.to_thread(host.running)

    await wait_for(all_gone, timeout=60)
