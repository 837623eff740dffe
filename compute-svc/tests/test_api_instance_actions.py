"""os-instance-actions in Nova's 2.1 shape (what tempest's schemas accept): an action per
request that changed a server, found by the request id its answer carried, with its
event and result; 404s as Nova words them; the actions go with their server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, private_vhost
from sqlalchemy import func, select

from common_rpc.audit import request_audit
from common_rpc.testing import wait_for
from compute_svc.db.models import InstanceAction, InstanceActionEvent

ACTION_KEYS = {"action", "instance_uuid", "request_id", "user_id", "project_id", "start_time",
               "message"}  # fmt: skip
EVENT_KEYS = {"event", "start_time", "finish_time", "result"}
NOVA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _show(c: Cloud, sid: str, request_id: str, *roles: str) -> dict[str, Any]:
    resp = await c.api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions/{request_id}", *roles)
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["instanceAction"])


async def _finished(c: Cloud, sid: str, request_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        action = await _show(c, sid, request_id)
        return action if all(e["result"] for e in action["events"]) else None

    return await wait_for(done, timeout=15)


async def test_actions_of_a_server_in_novas_shape(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        api = c.api
        flavor = await api.flavor("m1.one", ram=64, vcpus=1, disk=1)
        image = await api.image("p1", b"raw", disk_format="raw")
        body = {"server": {"name": "a", "flavorRef": flavor["id"], "imageRef": image["id"]}}
        created = await api.post("p1", "/v2.1/servers", body)
        sid = created.json()["server"]["id"]
        create_id = created.headers["x-compute-request-id"]
        assert create_id == created.headers["x-openstack-request-id"]
        await c.wait_status("p1", sid, "ACTIVE")

        action = await _finished(c, sid, create_id)
        assert set(action) == ACTION_KEYS | {"events"}
        assert (action["action"], action["instance_uuid"], action["request_id"]) == (
            "create",
            sid,
            create_id,
        )
        assert (action["user_id"], action["project_id"], action["message"]) == (
            "user-p1",
            "p1",
            None,
        )
        assert NOVA_TIME.match(action["start_time"]), action
        [event] = action["events"]
        assert set(event) == EVENT_KEYS  # no traceback for the owner
        assert (event["event"], event["result"]) == ("compute__do_build_and_run_instance",
                                                     "Success")  # fmt: skip
        assert NOVA_TIME.match(event["finish_time"]) and event["finish_time"] >= event["start_time"]
        assert set((await _show(c, sid, create_id, *ADMIN))["events"][0]) == EVENT_KEYS | {
            "traceback"
        }

        # Tempest's test_list_instance_actions: a hard reboot, then create and reboot.
        path = f"/v2.1/servers/{sid}/action"
        rebooted = await api.post("p1", path, {"reboot": {"type": "HARD"}})
        assert rebooted.status_code == 202, rebooted.text
        await c.wait_status("p1", sid, "ACTIVE")
        reboot = await _finished(c, sid, rebooted.headers["x-compute-request-id"])
        assert reboot["events"][0]["event"] == "compute_reboot_instance"
        stopped = await api.post("p1", path, {"os-stop": None})
        await c.wait_status("p1", sid, "SHUTOFF")
        stop = await _finished(c, sid, stopped.headers["x-compute-request-id"])
        assert (stop["action"], stop["events"][0]["event"]) == ("stop", "compute_stop_instance")
        await api.post("p1", path, {"os-start": None})
        await c.wait_status("p1", sid, "ACTIVE")
        listed = await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")
        assert listed.status_code == 200, listed.text
        actions = listed.json()["instanceActions"]
        assert [a["action"] for a in actions] == ["start", "stop", "reboot", "create"]
        assert all(set(a) == ACTION_KEYS for a in actions)
        assert list(listed.json()) == ["instanceActions"]

        # A refused request records nothing.
        refused = await api.post("p1", path, {"os-start": None})
        assert refused.status_code == 409
        listed = (await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")).json()
        assert len(listed["instanceActions"]) == 4

        # Not found: Nova's texts; another project's server is not found either.
        unknown = await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions/999")
        assert unknown.status_code == 404
        assert unknown.json() == {"itemNotFound": {"code": 404, "message": "Action 999 not found"}}
        for project, server in (("p2", sid), ("p1", "5b7e4f6c-0000-4000-8000-000000000000")):
            for suffix in ("", f"/{create_id}"):
                resp = await api.get(project, f"/v2.1/servers/{server}/os-instance-actions{suffix}")
                assert resp.status_code == 404 and "itemNotFound" in resp.json(), resp.text
        admin = await api.get("admin", f"/v2.1/servers/{sid}/os-instance-actions", *ADMIN)
        assert len(admin.json()["instanceActions"]) == 4
        # What `stackling audit compute` sees: the server on its host with its claim.
        await _audited_clean(c, servers=1, domains=1)

        # The actions go with their server.
        assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)
        gone = await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")
        assert gone.status_code == 404
        async with api.app.state.runtime.sessions() as session:
            for model in (InstanceAction, InstanceActionEvent):
                count = select(func.count()).select_from(model).where(model.server_id == sid)
                assert await session.scalar(count) == 0
        await _audited_clean(c, servers=0, domains=0)


async def _audited_clean(c: Cloud, *, servers: int, domains: int) -> None:
    """The compute audit (what `stackling audit` asks for) has nothing to report, and it
    looked at this test's servers and their host."""
    report = await request_audit(c.api.app.state.runtime.rpc, "compute", timeout=30)
    assert report.findings == [], report
    assert (report.checked["servers"], report.checked.get("domains")) == (servers, domains)
