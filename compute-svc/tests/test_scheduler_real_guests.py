"""Real QEMU guests placed by the scheduler's claims, with the allocation ratios.

- Ten boots at once on a host with room for six (3 vCPUs at a CPU ratio of 2.0): six
  guests run, four servers end in ERROR with Nova's "No valid host" fault, and the host is
  never oversubscribed: the count of running domains never exceeds six.
- More tiny servers than the host has cores (what libvirt reports, Nova's default ratio
  4.0): every one becomes ACTIVE with its guest running.

compute-api in-process and a real compute-agent on qemu:///system (TCG); the image is
stackling-tiny uploaded through the Image API. After the deletes nothing is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from api_helpers import ADMIN, Api, compute_api, private_vhost
from virt_fixtures import URI, instances_dir, leftovers, prepare_guest, sweep, unique_prefix

from common_rpc.audit import request_audit
from common_rpc.testing import wait_for
from compute_svc.agent.main import ComputeAgent
from compute_svc.agent.main import build as build_agent
from compute_svc.agent.settings import AgentSettings

CORES = 3  # what the agent offers in the first test
RATIO = 2.0
ROOM = 6  # CORES x RATIO
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


@asynccontextmanager
async def _host(
    tmp_path: Path, capacity: dict[str, int] | None, **api_settings: Any
) -> AsyncIterator[Host]:
    """compute-api (``api_settings``) and a real agent offering ``capacity`` (None: what
    libvirt and the disk report)."""
    prepare_guest()
    prefix = unique_prefix()
    root = instances_dir(prefix)
    offered = {f"agent_capacity_{k}": v for k, v in (capacity or {}).items()}
    try:
        with private_vhost() as amqp_url:
            async with AsyncExitStack() as stack:
                api = await stack.enter_async_context(
                    compute_api(tmp_path / "api", amqp_url, **api_settings)
                )
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
                        **offered,
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


@pytest.fixture(name="host")
async def host_fixture(tmp_path: Path) -> AsyncIterator[Host]:
    # RAM is not what runs out: the CPU ratio is what makes the room six.
    capacity = {"vcpus": CORES, "ram_mb": 4096, "disk_gb": 100}
    async with _host(tmp_path, capacity, cpu_allocation_ratio=RATIO) as host:
        yield host


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
    assert (row["vcpus"], row["vcpus_used"], row["running_vms"]) == (CORES, ROOM, ROOM), row
    await _audited_clean(host, servers=BOOTS, domains=ROOM)
    await _delete_all(host, ids)


async def _delete_all(host: Host, ids: list[str]) -> None:
    for sid in ids:
        assert (await host.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def all_gone() -> bool:
        listed = (await host.api.get("p1", "/v2.1/servers")).json()["servers"]
        return not listed and not await asyncio.to_thread(host.running)

    await wait_for(all_gone, timeout=60)
    # Nothing left: no claim, no usage on the host, no guest (the ERROR ones' too).
    await _audited_clean(host, servers=0, domains=0)


async def _audited_clean(host: Host, *, servers: int, domains: int) -> None:
    """The compute audit (what `stackling audit` asks for) has nothing to report: each
    placed server has its claim and its guest, the host's usage is the sum of its claims,
    no guest without a server. It looked at this test's servers and host."""
    report = await request_audit(host.api.app.state.runtime.rpc, "compute", timeout=30)
    assert report.findings == [], report
    assert (report.checked["servers"], report.checked.get("domains")) == (servers, domains)


async def test_more_tiny_servers_than_the_host_has_cores_all_run(tmp_path: Path) -> None:
    """The agent offers what libvirt reports; at Nova's default CPU ratio (4.0) two more
    1-vCPU servers than the host has cores all become ACTIVE, each guest running."""
    # Quotas lifted: the count follows the host, not Nova's default of 10 instances.
    async with _host(tmp_path, None, quota_instances=-1, quota_cores=-1) as host:
        api = host.api
        [row] = (await api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()[
            "hypervisors"
        ]
        cores = row["vcpus"]
        if cores > 6:
            pytest.skip(f"{cores} cores: {cores + 2} TCG guests is too many for a test")
        image = await _tiny_image(api, prepare_guest())
        flavor = await api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
        body = {
            "server": {
                "name": "tiny",
                "flavorRef": flavor["id"],
                "imageRef": image,
                "networks": "none",
            }
        }
        responses = await asyncio.gather(
            *(api.post("p1", "/v2.1/servers", body) for _ in range(cores + 2))
        )
        assert [r.status_code for r in responses] == [202] * (cores + 2)
        ids = [r.json()["server"]["id"] for r in responses]
        settled = await asyncio.gather(*(_settled(api, sid) for sid in ids))
        assert [s["status"] for s in settled] == ["ACTIVE"] * len(ids), [
            s.get("fault") for s in settled
        ]
        names = host.running()
        assert names == sorted(host.agent.host.driver.domain_name(sid) for sid in ids)
        [row] = (await api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()[
            "hypervisors"
        ]
        assert (row["vcpus"], row["vcpus_used"]) == (cores, cores + 2), row
        await _audited_clean(host, servers=len(ids), domains=len(ids))
        await _delete_all(host, ids)
