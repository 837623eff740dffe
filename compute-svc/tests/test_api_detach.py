"""A volume detach answers 202 and finishes in the background; one the guest refuses for
good is rolled back (the volume ``in-use`` again, never left ``detaching``) within its
deadline, with the fault in ``os-instance-actions``.

compute-api and the real volume-svc (API, database, status machine, and a volume-agent
with the in-memory target helper) on a private RabbitMQ vhost. The compute-agent is the
fake of ``api_helpers``: it answers for a guest that keeps the disk (the real guest
case is test_detach_real_guest.py). Short unplug settings keep it quick.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Api, Cloud, cloud, private_vhost
from sqlalchemy import select, update

from common_rpc import Event, EventSubscriber, RequestContext
from common_rpc.context import use_context
from common_rpc.contracts import validate_payload
from common_rpc.testing import running_app, wait_for
from compute_svc.db.models import InstanceActionEvent, Server, VolumeAttachment
from compute_svc.domain.audit import audit
from volume_svc.agent.main import VolumeAgent
from volume_svc.agent.main import build as build_volume_agent
from volume_svc.agent.settings import AgentSettings as VolumeAgentSettings
from volume_svc.app import create_app as create_volume_app
from volume_svc.settings import VolumeSettings

ATTEMPTS, WAIT_S = 2, 0.3


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@dataclass
class Lab:
    c: Cloud
    volume: Api
    tmp: Path
    agents: list[VolumeAgent]
    seen: list[Event]  # compute.server.detach.* as published

    @property
    def deps(self) -> Any:
        return self.c.api.app.state.deps

    async def start_volume_agent(self) -> VolumeAgent:
        agent = build_volume_agent(
            VolumeAgentSettings(
                data_dir=self.tmp / "volume",
                host="vol-test",
                amqp_url=self.deps.settings.amqp_url,
                agent_target_helper="fake",
                agent_reconcile_interval=3600.0,
                agent_heartbeat_interval=3600.0,
                log_json=False,
            )
        )
        await agent.start()
        self.agents.append(agent)
        return agent


@pytest.fixture
async def lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[Lab]:
    settings = {"device_detach_attempts": ATTEMPTS, "device_detach_timeout": WAIT_S}
    async with AsyncExitStack() as stack:
        c = await stack.enter_async_context(
            cloud(tmp_path, amqp_url, with_network=False, rpc_timeout_s=5.0, **settings)
        )
        volume_app = create_volume_app(
            VolumeSettings(
                data_dir=tmp_path / "volume",
                host="vol-api-test",
                backend_host="vol-test",
                amqp_url=amqp_url,
                identity_public_key_path=tmp_path / "keys" / "identity.pub",
                agent_timeout=2.0,
                log_json=False,
            )
        )
        http = await stack.enter_async_context(running_app(volume_app))
        found = Lab(c, Api(volume_app, http, c.api.signer), tmp_path, [], [])

        async def collect(event: Event) -> None:
            found.seen.append(event)

        broker = c.api.app.state.runtime.broker
        watch = EventSubscriber(broker, "detach-watch", ["compute.server.detach.*"], collect)
        await watch.start()
        stack.push_async_callback(watch.stop)

        async def stop_agents() -> None:
            for agent in found.agents:
                await agent.stop()

        stack.push_async_callback(stop_agents)
        await found.start_volume_agent()
        yield found


async def _server(lab: Lab) -> str:
    api = lab.c.api
    flavor = await api.flavor("m1.one", ram=64, vcpus=1, disk=1)
    image = await api.image("p1", b"raw", disk_format="raw")
    body = {"server": {"name": "d", "flavorRef": flavor["id"], "imageRef": image["id"]}}
    sid = (await api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]
    await lab.c.wait_status("p1", sid, "ACTIVE")
    return str(sid)


async def _volume(lab: Lab, vid: str | None = None) -> dict[str, Any]:
    if vid is None:
        resp = await lab.volume.post("p1", "/v3/p1/volumes", {"volume": {"size": 1}})
        assert resp.status_code == 202, resp.text
        vid = resp.json()["volume"]["id"]

        async def available() -> dict[str, Any] | None:
            vol = await _volume(lab, vid)
            return vol if vol["status"] == "available" else None

        return await wait_for(available, timeout=30)
    resp = await lab.volume.get("p1", f"/v3/p1/volumes/{vid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["volume"])


async def _attach(lab: Lab, sid: str, vid: str) -> None:
    path = f"/v2.1/servers/{sid}/os-volume_attachments"
    resp = await lab.c.api.post("p1", path, {"volumeAttachment": {"volumeId": vid}})
    assert resp.status_code == 200, resp.text
    assert (await _volume(lab, vid))["status"] == "in-use"


async def _status_becomes(lab: Lab, vid: str, status: str, timeout: float) -> float:
    """Seconds until the volume shows ``status``."""
    started = time.monotonic()

    async def reached() -> bool:
        return (await _volume(lab, vid))["status"] == status

    await wait_for(reached, timeout=timeout)
    return time.monotonic() - started


async def _action(lab: Lab, sid: str, request_id: str, *roles: str) -> dict[str, Any]:
    path = f"/v2.1/servers/{sid}/os-instance-actions/{request_id}"
    resp = await lab.c.api.get("p1", path, *roles)
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["instanceAction"])


async def _ended(lab: Lab, sid: str, request_id: str) -> dict[str, Any]:
    """The action once its event finished: the flow's last step, in compute's database
    (the volume service's status moves a moment before it)."""

    async def finished() -> dict[str, Any] | None:
        action = await _action(lab, sid, request_id)
        return action if action["events"][0].get("finish_time") else None

    return await wait_for(finished, timeout=15)


async def _published(lab: Lab, event_type: str, count: int) -> list[dict[str, Any]]:
    """The payloads of ``event_type`` once ``count`` of them were published."""

    async def arrived() -> list[dict[str, Any]] | None:
        found = [e.payload for e in lab.seen if e.event_type == event_type]
        return found if len(found) >= count else None

    return await wait_for(arrived, timeout=15)


async def test_a_refused_detach_is_rolled_back_within_its_deadline(lab: Lab) -> None:
    api, agent = lab.c.api, lab.c.agent
    sid = await _server(lab)
    vid = (await _volume(lab))["id"]
    await _attach(lab, sid, vid)
    path = f"/v2.1/servers/{sid}/os-volume_attachments"

    # The guest never lets the disk go: 202 at once, then every unplug request is asked.
    agent.refuse_detach.add(vid)
    started = time.monotonic()
    resp = await api.delete("p1", f"{path}/{vid}")
    assert resp.status_code == 202, resp.text
    assert time.monotonic() - started < 2.0
    request_id = resp.headers["x-openstack-request-id"]
    assert (await _volume(lab, vid))["status"] == "detaching"  # Cinder's begin_detaching
    again = await api.delete("p1", f"{path}/{vid}")
    assert again.status_code == 409 and "conflictingRequest" in again.json(), again.text
    deadline = lab.deps.settings.detach_deadline_s
    took = await _status_becomes(lab, vid, "in-use", timeout=deadline)
    assert took < deadline
    assert agent.unplugs[-1] == (vid, ATTEMPTS, WAIT_S)

    # Attached as before, everywhere: compute's row, the volume's attachment, the export.
    # The volume goes back to in-use first; compute's row follows in the roll back's own
    # transaction (with the action's fault), a moment later.
    async def reattached() -> bool:
        async with api.app.state.runtime.sessions() as session:
            row = await session.get(VolumeAttachment, (sid, vid))
            return row is not None and row.status == "attached"

    await wait_for(reattached, timeout=10)
    listed = (await api.get("p1", path)).json()["volumeAttachments"]
    assert [a["volumeId"] for a in listed] == [vid]
    volume = await _volume(lab, vid)
    assert volume["attachments"][0]["server_id"] == sid
    assert vid in lab.agents[-1].host.target.exports
    server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
    assert server["status"] == "ACTIVE"
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vid}]

    # The fault the user reads: the action's message, the event's result.
    fault = "Device detach failed for /dev/vdb: the guest still holds it after 2 unplug requests."
    action = await _action(lab, sid, request_id)
    assert action["action"] == "detach_volume" and action["message"] == fault
    assert action["instance_uuid"] == sid and action["request_id"] == request_id
    assert (action["user_id"], action["project_id"]) == ("user-p1", "p1")
    [event] = action["events"]
    assert event["event"] == "compute_detach_volume" and event["result"] == "Error"
    assert event["finish_time"] is not None and "traceback" not in event
    admin_view = await _action(lab, sid, request_id, *ADMIN)
    assert admin_view["events"][0]["traceback"] == fault
    listed_actions = (await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")).json()
    assert [a["action"] for a in listed_actions["instanceActions"]] == [
        "detach_volume",
        "attach_volume",
        "create",
    ]
    errors = await _published(lab, "compute.server.detach.error", 1)
    assert [(p["id"], p["fault"]) for p in errors] == [(sid, fault)]
    assert validate_payload("compute.server.detach.error", errors[0])

    # Once the guest lets go, a detach goes through: no attachment, no export.
    agent.refuse_detach.discard(vid)
    resp = await api.delete("p1", f"{path}/{vid}")
    assert resp.status_code == 202, resp.text
    await _status_becomes(lab, vid, "available", timeout=15)
    # compute forgets the attachment after the volume service let it go, with the action's end.
    done = await _ended(lab, sid, resp.headers["x-openstack-request-id"])
    assert (done["message"], done["events"][0]["result"]) == (None, "Success")
    assert (await api.get("p1", path)).json()["volumeAttachments"] == []
    assert vid not in lab.agents[-1].host.target.exports
    await lab.deps.tasks.idle()


async def test_a_detach_whose_run_was_lost_is_swept(lab: Lab) -> None:
    """A run past its deadline (its process died, or it hangs) is taken over: unplugging
    is rolled back, and the old run, when it wakes up, changes nothing; releasing (the
    volume service away after the unplug) is finished forward."""
    api, agent, sweeper = lab.c.api, lab.c.agent, lab.c.api.app.state.runtime.sweeper
    sid = await _server(lab)
    vid = (await _volume(lab))["id"]
    await _attach(lab, sid, vid)
    path = f"/v2.1/servers/{sid}/os-volume_attachments"

    agent.refuse_detach.add(vid)
    agent.detach_delay = 3.0  # the host answers late: by then the run is not its own
    resp = await api.delete("p1", f"{path}/{vid}")
    assert resp.status_code == 202, resp.text
    await _expire(lab, sid)
    stuck = (await audit(lab.deps)).to_wire()["findings"]
    assert [(f["kind"], f["resource"], f["id"]) for f in stuck] == [("stuck", "detach", vid)]
    assert await sweeper.sweep_once() == 1
    await _status_becomes(lab, vid, "in-use", timeout=15)
    fault = f"Detach of volume {vid} did not finish within its deadline."
    action = await _ended(lab, sid, resp.headers["x-openstack-request-id"])
    assert action["message"] == fault and action["events"][0]["result"] == "Error"
    await lab.deps.tasks.idle()  # the old run got its refusal: it finds the event taken
    action = await _action(lab, sid, resp.headers["x-openstack-request-id"])
    assert action["message"] == fault
    assert len(await _published(lab, "compute.server.detach.error", 1)) == 1
    assert (await _volume(lab, vid))["status"] == "in-use"

    # The guest lets go, but the volume backend is away: the event stays releasing.
    agent.refuse_detach.discard(vid)
    agent.detach_delay = 0.0
    await lab.agents[-1].stop()
    lab.agents.pop()
    resp = await api.delete("p1", f"{path}/{vid}")
    assert resp.status_code == 202, resp.text
    await lab.deps.tasks.idle()
    async with api.app.state.runtime.sessions() as session:
        [status] = await session.scalars(
            select(InstanceActionEvent.status).where(InstanceActionEvent.target == vid)
            .order_by(InstanceActionEvent.id.desc()).limit(1)
        )  # fmt: skip
    assert status == "releasing"
    assert (await api.get("p1", path)).json()["volumeAttachments"] != []
    await lab.start_volume_agent()
    await _expire(lab, sid)
    assert await sweeper.sweep_once() == 1
    await _status_becomes(lab, vid, "available", timeout=15)

    async def forgotten() -> bool:
        return (await api.get("p1", path)).json()["volumeAttachments"] == []

    await wait_for(forgotten, timeout=10)
    action = await _action(lab, sid, resp.headers["x-openstack-request-id"])
    assert (action["message"], action["events"][0]["result"]) == (None, "Success")
    with use_context(RequestContext(project_id="admin", roles=frozenset({"admin"}))):
        report = await lab.volume.app.state.runtime.rpc.call("volume", "audit", timeout=30)
    assert report["findings"] == [], report
    assert (await audit(lab.deps)).findings == []


async def _expire(lab: Lab, sid: str) -> None:
    """The server's running detach as a dead process leaves it: someone else's, expired."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with lab.c.api.app.state.runtime.sessions.begin() as session:
        await session.execute(
            update(InstanceActionEvent)
            .where(
                InstanceActionEvent.server_id == sid,
                InstanceActionEvent.status.in_(("unplugging", "releasing")),
            )
            .values(task_owner="compute-api#dead/0", task_deadline=past)
        )


async def test_detach_refusals(lab: Lab) -> None:
    """404 for what is not attached and for another project's server, 409 while the
    server is busy; nothing moves."""
    api = lab.c.api
    sid = await _server(lab)
    vid = (await _volume(lab))["id"]
    path = f"/v2.1/servers/{sid}/os-volume_attachments/{vid}"
    resp = await api.delete("p1", path)
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == (
        f"Instance {sid} is not attached to volume {vid}"
    )
    await _attach(lab, sid, vid)
    assert (await api.delete("p2", path)).status_code == 404
    async with api.app.state.runtime.sessions.begin() as session:
        await session.execute(update(Server).where(Server.id == sid).values(task_state="x"))
    busy = await api.delete("p1", path)
    assert busy.status_code == 409 and "conflictingRequest" in busy.json(), busy.text
    assert (await _volume(lab, vid))["status"] == "in-use"
    listed = (await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")).json()
    assert [a["action"] for a in listed["instanceActions"]] == ["attach_volume", "create"]
