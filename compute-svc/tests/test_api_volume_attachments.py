"""os-volume_attachments: Cinder's attach protocol over RPC, undone in reverse on failure,
and run again by a server delete (volume-svc here is a fake recording the calls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Cloud, FakeVolumeService, cloud, private_vhost

from common_rpc.testing import wait_for

VOLUME = "6a3e8f0e-1a7b-4c36-9c55-0f5f4c1d2e01"
OTHER = "6a3e8f0e-1a7b-4c36-9c55-0f5f4c1d2e02"


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def test_attach_detach_and_delete(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        volumes = FakeVolumeService(c.api.app.state.runtime)
        await volumes.server.start()
        try:
            flavor = await c.api.flavor("m1.one", ram=64, vcpus=1, disk=1)
            image = await c.api.image("p1", b"raw", disk_format="raw")
            body = {"server": {"name": "v", "flavorRef": flavor["id"], "imageRef": image["id"]}}
            sid = (await c.api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]
            await c.wait_status("p1", sid, "ACTIVE")
            path = f"/v2.1/servers/{sid}/os-volume_attachments"

            resp = await c.api.post("p1", path, {"volumeAttachment": {"volumeId": VOLUME}})
            assert resp.status_code == 200, resp.text
            assert resp.json() == {
                "volumeAttachment": {
                    "id": VOLUME,
                    "serverId": sid,
                    "volumeId": VOLUME,
                    "device": "/dev/vdb",
                }
            }
            assert volumes.calls == [
                ("reserve", VOLUME),
                ("initialize_connection", VOLUME),
                ("attach", VOLUME),
            ]
            assert ("attach", VOLUME) in c.agent.power
            listed = (await c.api.get("p1", path)).json()["volumeAttachments"]
            assert [a["volumeId"] for a in listed] == [VOLUME]
            server = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
            assert server["os-extended-volumes:volumes_attached"] == [{"id": VOLUME}]
            again = await c.api.post("p1", path, {"volumeAttachment": {"volumeId": VOLUME}})
            assert again.status_code == 400

            # A refusal half-way is undone in reverse and leaves no attachment.
            volumes.calls.clear()
            volumes.fail = "attach"
            failed = await c.api.post("p1", path, {"volumeAttachment": {"volumeId": OTHER}})
            assert failed.status_code == 400 and "badRequest" in failed.json()
            assert volumes.calls == [
                ("reserve", OTHER),
                ("initialize_connection", OTHER),
                ("attach", OTHER),
                ("terminate_connection", OTHER),
                ("unreserve", OTHER),
            ]
            assert ("detach", OTHER) in c.agent.power
            assert (await c.api.get("p1", f"{path}/{OTHER}")).status_code == 404
            volumes.fail = None

            # The volume service refuses begin_detaching: 400 as Nova's, nothing changed.
            volumes.calls.clear()
            volumes.fail = "begin_detaching"
            refused = await c.api.delete("p1", f"{path}/{VOLUME}")
            assert refused.status_code == 400, refused.text
            assert refused.json()["badRequest"]["message"] == (
                f"Invalid volume: volume {VOLUME} refused begin_detaching"
            )
            volumes.fail = None
            assert volumes.calls == [("begin_detaching", VOLUME)]
            assert ("detach", VOLUME) not in c.agent.power
            listed = (await c.api.get("p1", path)).json()["volumeAttachments"]
            assert [a["volumeId"] for a in listed] == [VOLUME]
            actions = await c.api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")
            assert "detach_volume" not in [a["action"] for a in actions.json()["instanceActions"]]

            # The detach answers at once; the host unplugs, then the volume is let go.
            volumes.calls.clear()
            resp = await c.api.delete("p1", f"{path}/{VOLUME}")
            assert resp.status_code == 202, resp.text
            assert volumes.calls[0] == ("begin_detaching", VOLUME)  # before the 202
            again = await c.api.delete("p1", f"{path}/{VOLUME}")
            assert again.status_code in (404, 409), again.text  # detaching, or gone already

            async def detached() -> bool:
                listed = (await c.api.get("p1", path)).json()["volumeAttachments"]
                return listed == []

            await wait_for(detached, timeout=15)
            assert volumes.calls == [
                ("begin_detaching", VOLUME),
                ("terminate_connection", VOLUME),
                ("detach", VOLUME),
            ]
            # Nova's attempts and timeout, as the settings say, went to the host.
            assert c.agent.unplugs[-1] == (VOLUME, 8, 20.0)
            request_id = resp.headers["x-openstack-request-id"]
            action = await _action(c, sid, request_id)
            assert (action["action"], action["message"]) == ("detach_volume", None)
            assert [(e["event"], e["result"]) for e in action["events"]] == [
                ("compute_detach_volume", "Success")
            ]
            missing = await c.api.delete("p1", f"{path}/{VOLUME}")
            assert missing.status_code == 404 and "itemNotFound" in missing.json()

            # Deleting a server detaches what is still attached.
            await c.api.post("p1", path, {"volumeAttachment": {"volumeId": OTHER}})
            volumes.calls.clear()
            await c.api.delete("p1", f"/v2.1/servers/{sid}")
            await c.wait_gone("p1", sid)
            assert [m for m, _ in volumes.calls] == [
                "begin_detaching",
                "terminate_connection",
                "detach",
            ]
            other = await c.api.get("p2", path)
            assert other.status_code == 404
        finally:
            await volumes.server.stop()


async def _action(c: Cloud, server_id: str, request_id: str) -> dict[str, Any]:
    resp = await c.api.get("p1", f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["instanceAction"])
