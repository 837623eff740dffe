"""compute-api with the real compute-agent on libvirt's test:///default hypervisor and a
real network-api: the boot/delete contract between them, heartbeats and reconcile
included (the network-agent is a fake; the libvirt tests boot real QEMU guests)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, FakeNetworkAgent, compute_api, network_api, private_vhost
from virt_fixtures import instances_dir, leftovers, sweep, unique_prefix

from common_rpc.testing import wait_for
from compute_svc.agent.main import build
from compute_svc.agent.settings import AgentSettings

URI = "test:///default"


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _stack(
    tmp_path: Path, amqp_url: str, stack: AsyncExitStack, **settings: Any
) -> dict[str, Any]:
    prefix = unique_prefix()
    root = instances_dir(prefix)
    host = f"{prefix}cn1"

    def cleanup() -> None:
        left = leftovers(URI, prefix, root / "inst")
        sweep(URI, prefix, root)
        assert left["domains"] == [], left

    stack.callback(cleanup)
    api = await stack.enter_async_context(compute_api(tmp_path, amqp_url, **settings))
    network = await stack.enter_async_context(network_api(tmp_path, amqp_url, api.signer))
    net_agent = FakeNetworkAgent(network.app.state.runtime, host)
    await net_agent.server.start()
    stack.push_async_callback(net_agent.server.stop)
    agent = build(
        AgentSettings(
            host=host,
            data_dir=tmp_path / "agent",
            amqp_url=amqp_url,
            agent_libvirt_uri=URI,
            agent_virt_type="test",
            agent_domain_prefix=prefix,
            agent_instances_dir=root / "inst",
            agent_reconcile_interval=3600,
            agent_heartbeat_interval=3600,
            agent_shutdown_timeout=0,
            agent_capacity_vcpus=4,
            agent_capacity_ram_mb=4096,
            agent_capacity_disk_gb=40,
        )
    )
    await agent.start()
    stack.push_async_callback(agent.stop)
    await wait_for(lambda: api.app.state.deps.agents.alive_hosts("compute-agent"), timeout=15)
    return {"api": api, "network": network, "agent": agent, "host": host, "net_agent": net_agent}


@pytest.fixture
async def lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        yield await _stack(tmp_path, amqp_url, stack)


async def test_boot_reconcile_and_delete_with_the_real_agent(lab: dict[str, Any]) -> None:
    api, network, agent, host = lab["api"], lab["network"], lab["agent"], lab["host"]
    flavor = await api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    ramdisk = await api.image("p1", b"initramfs", disk_format="ari", container_format="ari")
    kernel = await api.image(
        "p1",
        b"vmlinuz",
        disk_format="aki",
        container_format="aki",
        ramdisk_id=ramdisk["id"],
        os_command_line="console=ttyS0",
    )
    net = (await network.post("p1", "/v2.0/networks", {"network": {"name": "n1"}})).json()
    subnet = {"subnet": {"network_id": net["network"]["id"], "cidr": "10.7.0.0/24"}}
    assert (await network.post("p1", "/v2.0/subnets", subnet | {})).status_code == 201
    body = {
        "server": {
            "name": "real-agent",
            "flavorRef": flavor["id"],
            "imageRef": kernel["id"],
            "networks": [{"uuid": net["network"]["id"]}],
            "user_data": base64.b64encode(b"echo hi").decode(),
        }
    }
    sid = (await api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]

    async def settled() -> dict[str, Any] | None:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        return server if server["status"] in ("ACTIVE", "ERROR") else None

    server = await wait_for(settled, timeout=60)
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-STS:power_state"] == 1
    state = await agent.host.inventory()
    assert [d.model_dump() for d in state.domains] == [{"server_id": sid, "power_state": "running"}]

    # The hypervisor list shows the agent's capacity and the claim.
    hyper = (await api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
    [row] = hyper["hypervisors"]
    assert (row["hypervisor_hostname"], row["vcpus"], row["vcpus_used"]) == (host, 4, 1)

    # Stop through the API; the agent's reconcile then agrees with the service.
    await api.post("p1", f"/v2.1/servers/{sid}/action", {"os-stop": None})

    async def stopped() -> bool:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        return server["status"] == "SHUTOFF"

    await wait_for(stopped, timeout=30)
    agent.host.touched.clear()
    result = await agent.reconciler.run_once()
    assert result["removed"] == [] and result["power_changes"] == []
    console = await api.post("p1", f"/v2.1/servers/{sid}/action", {"os-getConsoleOutput": {}})
    assert console.status_code == 200 and "output" in console.json()

    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def gone() -> bool:
        return (await api.get("p1", f"/v2.1/servers/{sid}")).status_code == 404

    await wait_for(gone, timeout=30)
    assert (await agent.host.inventory()).domains == []
    ports = (await network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
    assert [p for p in ports if p["device_id"] == sid] == []
