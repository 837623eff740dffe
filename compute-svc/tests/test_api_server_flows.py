"""The flows around a boot: events through the outbox, the BUILD deadline, the agent's
power-state reports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Api, cloud, private_vhost

from common_rpc import Event, EventSubscriber, RequestContext, RpcClient
from common_rpc.audit import request_audit
from common_rpc.context import use_context
from common_rpc.contracts import validate_payload
from common_rpc.testing import running_app, wait_for
from compute_svc.app import create_app
from compute_svc.db.models import Server
from compute_svc.domain import takeover
from compute_svc.settings import ComputeSettings

AGENT = RequestContext(user_id="compute-agent", roles=frozenset({"admin"}))


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _boot(c: Any, name: str) -> str:
    flavor = await c.api.flavor(f"f-{name}", ram=64, vcpus=1, disk=1)
    image = await c.api.image("p1", b"raw", disk_format="raw")
    body = {"server": {"name": name, "flavorRef": flavor["id"], "imageRef": image["id"]}}
    resp = await c.api.post("p1", "/v2.1/servers", body)
    assert resp.status_code == 202, resp.text
    return resp.json()["server"]["id"]


async def test_lifecycle_events_follow_the_contracts(tmp_path: Path, amqp_url: str) -> None:
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        runtime = c.api.app.state.runtime
        subscriber = EventSubscriber(runtime.broker, "test-watch", ["compute.server.#"], collect)
        await subscriber.start()
        try:
            sid = await _boot(c, "watched")
            await c.wait_status("p1", sid, "ACTIVE")
            await c.api.post("p1", f"/v2.1/servers/{sid}/action", {"os-stop": None})
            await c.wait_status("p1", sid, "SHUTOFF")
            await c.api.delete("p1", f"/v2.1/servers/{sid}")
            await c.wait_gone("p1", sid)
            wanted = [
                "compute.server.create.start",
                "compute.server.create.end",
                "compute.server.stop.start",
                "compute.server.stop.end",
                "compute.server.delete.start",
                "compute.server.delete.end",
            ]

            async def all_seen() -> bool:
                return [e.event_type for e in seen if e.payload["id"] == sid] == wanted

            await wait_for(all_seen, timeout=15)
        finally:
            await subscriber.stop()
        for event in seen:
            payload = validate_payload(event.event_type, event.payload)
            assert payload.project_id == "p1"  # type: ignore[attr-defined]
        end = next(e for e in seen if e.event_type == "compute.server.create.end")
        assert end.payload["status"] == "ACTIVE" and end.payload["host"] == c.host


async def test_build_past_its_deadline_goes_to_error(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False, build_timeout_s=0.5) as c:
        c.agent.spawn_delay = 2.0
        sid = await _boot(c, "slow")
        await asyncio.sleep(1.0)
        swept = await c.api.app.state.runtime.sweeper.sweep_once()
        assert swept == 1
        server = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert server["status"] == "ERROR"
        assert "deadline" in server["fault"]["message"]
        # The boot finds the row moved on when its spawn returns, and undoes it.
        await c.api.app.state.deps.tasks.idle()
        assert sid in c.agent.destroyed
        hyper = await c.api.get("admin", "/v2.1/os-hypervisors/detail", "admin")
        assert hyper.json()["hypervisors"][0]["vcpus_used"] == 0


async def test_a_spawn_whose_reply_is_lost_is_asked_again(tmp_path: Path, amqp_url: str) -> None:
    """The agent's first answer never comes (lost with a broker restart): the boot asks
    again after ``rpc_timeout_s``, not after the whole spawn timeout, and ends ACTIVE."""
    async with cloud(tmp_path, amqp_url, with_network=False, rpc_timeout_s=1.5) as c:
        c.agent.stall_spawns, c.agent.stall_s = 1, 3.0
        sid = await _boot(c, "lost-reply")
        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        assert c.agent.spawn_calls == 2
        assert sid in c.agent.spawned


async def test_a_delete_does_not_wait_for_a_stalled_boot(tmp_path: Path, amqp_url: str) -> None:
    """The host never answers the spawn: a DELETE cancels the boot and releases what it
    took at once, instead of queueing behind the spawn's timeout (300 s)."""
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        c.agent.stall_spawns = 1000
        sid = await _boot(c, "stalled")

        async def spawning() -> bool:
            return c.agent.spawn_calls > 0

        await wait_for(spawning, timeout=10)
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)  # within wait_gone's 30 s
        assert sid in c.agent.destroyed
        hyper = await c.api.get("admin", "/v2.1/os-hypervisors/detail", "admin")
        assert hyper.json()["hypervisors"][0]["vcpus_used"] == 0


async def test_a_dead_replicas_boot_is_taken_over_and_keeps_its_claim(
    tmp_path: Path, amqp_url: str
) -> None:
    """A boot whose replica died mid-spawn (its task gone, its heartbeat silent) is taken
    over: the boot runs again here, reuses the claim it had, and the server goes ACTIVE,
    with one claim and one spawn that answered."""
    async with cloud(tmp_path, amqp_url, with_network=False, rpc_timeout_s=1.0) as c:
        deps = c.api.app.state.deps
        c.agent.stall_spawns, c.agent.stall_s = 1, 2.0
        sid = await _boot(c, "orphan")

        async def spawning() -> bool:
            return c.agent.spawn_calls > 0

        await wait_for(spawning, timeout=10)
        deps.tasks.running[sid].cancel()  # the replica dies: its boot task is gone...
        async with deps.runtime.sessions.begin() as session:
            server = await session.get(Server, sid)
            server.task_owner = "compute@gone#dead"  # ...and it was another process
        assert await takeover.take_over(deps) == [sid]
        assert await takeover.take_over(deps) == []  # taken once
        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        hyper = await c.api.get("admin", "/v2.1/os-hypervisors/detail", "admin")
        assert hyper.json()["hypervisors"][0]["vcpus_used"] == 1  # the claim, not a second


async def test_agent_power_reports(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        sid = await _boot(c, "powered")
        await c.wait_status("p1", sid, "ACTIVE")
        rpc = RpcClient(c.api.app.state.runtime.broker)
        with use_context(AGENT):
            reply = await rpc.call(
                "compute", "power_state_changed", server_id=sid, power_state="shutdown", timeout=10
            )
            assert reply == {"server_id": sid, "status": "SHUTOFF"}
            on_host = await rpc.call("compute", "host_state", host=c.host, timeout=10)
            assert on_host["servers"] == [
                {"server_id": sid, "generation": 1, "power_state": "shutdown", "nics": []}
            ]
        server = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert server["OS-EXT-STS:vm_state"] == "stopped"
        member = RequestContext(project_id="p1", roles=frozenset({"member"}))
        with use_context(member):
            with pytest.raises(Exception) as denied:
                await rpc.call("compute", "host_state", host=c.host, timeout=10)
        assert getattr(denied.value, "code", "") == "forbidden"


async def test_audit_compares_hosts_and_database(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        sid = await _boot(c, "audited")
        await c.wait_status("p1", sid, "ACTIVE")
        rpc = RpcClient(c.api.app.state.runtime.broker)
        clean = await request_audit(rpc, "compute", timeout=10)
        assert clean.clean, clean.findings
        assert clean.checked == {"servers": 1, "claims": 1, "domains": 1}

        # A guest nobody knows, and a server whose guest vanished.
        c.agent.spawned["0c0ffee0-0000-4000-8000-000000000000"] = {}
        c.agent.spawned.pop(sid)
        report = await request_audit(rpc, "compute", timeout=10)
        found = {(f.kind, f.resource, f.id) for f in report.findings}
        assert found == {
            ("orphan", "domain", "0c0ffee0-0000-4000-8000-000000000000"),
            ("missing", "domain", sid),
        }
        member = RequestContext(project_id="p1", roles=frozenset({"member"}))
        with use_context(member):
            with pytest.raises(Exception) as denied:
                await rpc.call("compute", "audit", timeout=10)
        assert getattr(denied.value, "code", "") == "forbidden"


async def test_delete_converges_once_the_host_answers(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False, delete_timeout_s=0.3) as c:
        sid = await _boot(c, "sticky")
        await c.wait_status("p1", sid, "ACTIVE")
        c.agent.fail_destroy = True
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.api.app.state.deps.tasks.idle()
        server = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert server["OS-EXT-STS:task_state"] == "deleting"  # not gone: the guest may run
        # A repeated delete is accepted and changes nothing.
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

        c.agent.fail_destroy = False
        await asyncio.sleep(0.5)
        assert await c.api.app.state.runtime.sweeper.sweep_once() == 1
        await c.wait_gone("p1", sid)
        assert sid in c.agent.destroyed
        hyper = await c.api.get("admin", "/v2.1/os-hypervisors/detail", "admin")
        assert hyper.json()["hypervisors"][0]["vcpus_used"] == 0


async def test_delete_on_another_replica_during_a_boot_leaks_nothing(
    tmp_path: Path, amqp_url: str
) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        flavor = await c.api.flavor("m1.one", ram=64, vcpus=1, disk=1)
        image = await c.api.image("p1", b"raw", disk_format="raw")
        net = (await c.network.post("p1", "/v2.0/networks", {"network": {"name": "n"}})).json()
        body = {"subnet": {"network_id": net["network"]["id"], "cidr": "10.8.0.0/24"}}
        await c.network.post("p1", "/v2.0/subnets", body)
        settings = ComputeSettings(data_dir=tmp_path, amqp_url=amqp_url, host="replica-b")
        other = create_app(settings)
        async with running_app(other) as http:
            replica_b = Api(other, http, c.api.signer)
            c.agent.spawn_delay = 1.0
            server = {
                "name": "raced",
                "flavorRef": flavor["id"],
                "imageRef": image["id"],
                "networks": [{"uuid": net["network"]["id"]}],
            }
            resp = await c.api.post("p1", "/v2.1/servers", {"server": server})
            sid = resp.json()["server"]["id"]

            async def spawning() -> bool:
                got = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
                return got["OS-EXT-STS:task_state"] == "spawning"

            await wait_for(spawning, timeout=15)
            assert (await replica_b.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
            await other.state.deps.tasks.idle()
            await c.api.app.state.deps.tasks.idle()
        await c.wait_gone("p1", sid)
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        assert [p for p in ports if p["device_id"] == sid] == []
        assert sid not in c.agent.spawned
        hyper = (await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
        assert hyper["hypervisors"][0]["vcpus_used"] == 0
