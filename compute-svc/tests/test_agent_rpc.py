"""compute-agent in-process on RabbitMQ with libvirt's test:///default hypervisor.

The compute service's side (``host_state``, ``power_state_changed``, ``report_state``)
is a small recording server on a private topic, typed with the same contract: the
agent's commands on ``compute.<host>`` are driven untyped (keyword arguments and JSON
replies, as any sender may), and its reconcile and heartbeat are observed from the
service's side.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
import pytest
from virt_fixtures import fake_image, instances_dir, leftovers, server, sweep, unique_prefix

from common_rpc import RpcRouter
from common_rpc.agents import REPORT_STATE, Heartbeat
from common_rpc.chassis.agent import HostStateRequest, agent_topic
from common_rpc.errors import Invalid, NotFound
from common_rpc.methods import Empty
from common_rpc.rpc import RpcServer, queue_name
from common_rpc.testing import wait_for
from compute_svc import contracts as cc
from compute_svc.agent.main import ComputeAgent, build
from compute_svc.agent.settings import AgentSettings

URI = "test:///default"


@dataclass
class RecordingService:
    """The compute service as the agent sees it: a list of servers, and what it was told."""

    servers: list[cc.DesiredServer] = field(default_factory=list)
    power_changes: list[tuple[str, str | int]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)


def _service_router() -> RpcRouter:
    router = RpcRouter()

    @router.implement(cc.HOST_STATE)
    async def host_state(deps: RecordingService, request: HostStateRequest) -> cc.HostState:
        return cc.HostState(host=request.host, servers=deps.servers)

    @router.implement(cc.POWER_STATE_CHANGED)
    async def power_state_changed(
        deps: RecordingService, request: cc.PowerStateChanged
    ) -> cc.ServerStatus:
        deps.power_changes.append((request.server_id, request.power_state))
        return cc.ServerStatus(server_id=request.server_id)

    @router.implement(REPORT_STATE)
    async def report_state(deps: RecordingService, beat: Heartbeat) -> Empty:
        deps.reports.append(
            {"binary": beat.binary, "host": beat.host, "topic": beat.topic, **beat.capabilities}
        )
        return Empty()

    return router


@dataclass
class Lab:
    agent: ComputeAgent
    service: RecordingService
    topic: str
    image: dict[str, Any]

    async def call(self, method: str, **args: Any) -> Any:
        return await self.agent.runtime.rpc.call(self.topic, method, timeout=20, **args)


@pytest.fixture(name="lab")
async def lab_fixture(tmp_path: Path) -> AsyncIterator[Lab]:
    prefix = unique_prefix()
    root = instances_dir(prefix)
    api_topic = f"compute-test-{uuid.uuid4().hex[:8]}"
    settings = AgentSettings(
        host=f"{prefix}cn1",
        data_dir=tmp_path,
        agent_libvirt_uri=URI,
        agent_virt_type="test",
        agent_domain_prefix=prefix,
        agent_instances_dir=root / "inst",
        agent_reconcile_interval=3600,
        agent_heartbeat_interval=3600,
        agent_shutdown_timeout=0,
        agent_api_topic=api_topic,
    )
    agent = build(settings)
    service = RecordingService()
    fake_api = RpcServer(agent.runtime.broker, api_topic, service)
    fake_api.include(_service_router())
    try:
        await fake_api.start()
        await agent.start()
        topic = agent_topic("compute", settings.host)
        yield Lab(agent, service, topic, fake_image(tmp_path / "img"))
    finally:
        await fake_api.stop()  # first: it shares the agent's broker connection
        broker = agent.runtime.broker
        channel = await broker.channel(broker.config.url)
        for name in (api_topic, agent_topic("compute", settings.host)):
            await channel.queue_delete(queue_name(name))
        await channel.close()
        await agent.stop()
        left = leftovers(URI, prefix, root / "inst")
        sweep(URI, prefix, root)
        assert left["domains"] == [], left


async def test_heartbeat_carries_capacity(lab: Lab) -> None:
    reports = await wait_for(lambda: _value(lab.service.reports), timeout=10)
    first = reports[0]
    assert first["binary"] == "compute-agent" and first["topic"] == lab.topic
    assert first["vcpus"] > 0 and first["ram_mb"] > 0 and first["disk_gb"] > 0


async def _value(value: Any) -> Any:
    return value


async def test_contract_is_idempotent_and_late_spawn_changes_nothing(lab: Lab) -> None:
    payload = server(lab.image, generation=2)
    sid = payload["server_id"]
    first = await lab.call("spawn", server=payload)
    assert first == {
        "server_id": sid,
        "domain": lab.agent.settings.agent_domain_prefix + sid,
        "power_state": "running",
        "observed_generation": 2,
        "deleted": False,
    }
    assert await lab.call("spawn", server=payload) == first
    older = await lab.call("spawn", server=payload | {"generation": 1})
    assert older["observed_generation"] == 2  # an older command is recognised as old

    state = await lab.call("inventory")
    assert state["host"] == lab.agent.settings.host
    assert state["domains"] == [{"server_id": sid, "power_state": "running"}]
    assert set(state["capacity"]) == {"vcpus", "ram_mb", "disk_gb"}

    assert (await lab.call("power", server_id=sid, action="stop"))["power_state"] == "shutdown"
    assert (await lab.call("power", server_id=sid, action="start"))["power_state"] == "running"
    assert await lab.call("console_output", server_id=sid, length=10) == {"output": ""}
    # test:///default keeps no libvirt secrets: an export without a CHAP account.
    conn = {
        "data": {"target_iqn": "iqn.2026-01.dev.stackling:v1", "target_portal": "127.0.0.1:3260"}
    }
    attached = await lab.call("attach_volume", server_id=sid, volume_id="v1", connection=conn)
    assert attached["device"] == "vdc"
    assert (await lab.call("attach_volume", server_id=sid, volume_id="v1", connection=conn))[
        "device"
    ] == "vdc"
    await lab.call("detach_volume", server_id=sid, volume_id="v1")
    nic = {"port_id": "p1", "mac": "fa:16:3e:00:00:42", "bridge": "brq1", "mtu": 1450}
    plugged = await lab.call("attach_interface", server_id=sid, nic=nic)
    assert plugged == {"server_id": sid, "port_id": "p1", "attached": True}
    assert (await lab.call("attach_interface", server_id=sid, nic=nic))["attached"] is False
    domain = lab.agent.host.driver.conn().lookupByName(first["domain"])
    assert "fa:16:3e:00:00:42" in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    await lab.call("detach_interface", server_id=sid, nic=nic)
    await lab.call("detach_interface", server_id=sid, nic=nic)  # a repeat: nothing to do
    assert "fa:16:3e:00:00:42" not in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    with pytest.raises(Invalid):
        await lab.call("attach_interface", server_id=sid, nic={"port_id": "p2"})

    assert (await lab.call("destroy", server_id=sid))["destroyed"] is True
    assert (await lab.call("destroy", server_id=sid))["destroyed"] is True
    late = await lab.call("spawn", server=payload | {"generation": 3})
    assert late["deleted"] is True
    assert (await lab.call("inventory"))["domains"] == []

    with pytest.raises(NotFound):
        await lab.call("power", server_id=sid, action="start")
    with pytest.raises(Invalid):
        await lab.call("spawn", server={"server_id": "x"})


async def test_reconcile_removes_orphans_and_reports_power(lab: Lab) -> None:
    keep = server(lab.image)
    orphan = server(lab.image)
    await lab.call("spawn", server=keep)
    await lab.call("spawn", server=orphan)
    stray_disk = lab.agent.host.driver.store.make_server_dir(str(uuid.uuid4()))
    # The service knows only ``keep`` and believes it stopped.
    ghost = str(uuid.uuid4())  # the service places it here, but it has no domain
    building = str(uuid.uuid4())  # no desired power state yet: not reported
    lab.service.servers = [
        cc.DesiredServer(server_id=keep["server_id"], generation=1, power_state="shutdown"),
        cc.DesiredServer(server_id=ghost, generation=1, power_state="running"),
        cc.DesiredServer(server_id=building, generation=1, power_state=None),
    ]
    lab.agent.host.touched.clear()  # as if the commands were long ago
    result = await lab.agent.reconciler.run_once()
    assert sorted(result["removed"]) == sorted([orphan["server_id"], stray_disk.name])
    assert result["pruned_images"] == []  # the kept server still uses the image
    domains = (await lab.call("inventory"))["domains"]
    assert domains == [{"server_id": keep["server_id"], "power_state": "running"}]
    assert not stray_disk.exists()
    await wait_for(lambda: _value(len(lab.service.power_changes) >= 2), timeout=10)
    assert sorted(lab.service.power_changes) == sorted(
        [(keep["server_id"], "running"), (ghost, "nostate")]
    )
    await lab.call("destroy", server_id=keep["server_id"])


async def test_reconcile_spares_a_server_commanded_during_the_round(lab: Lab) -> None:
    fresh = server(lab.image)
    lab.service.servers = []
    await lab.call("spawn", server=fresh)  # touched now: newer than the round's list
    result = await lab.agent.host.converge([], since=0.0)
    assert result.removed == []
    assert [d["server_id"] for d in (await lab.call("inventory"))["domains"]] == [
        fresh["server_id"]
    ]
    await lab.call("destroy", server_id=fresh["server_id"])
