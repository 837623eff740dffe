"""os-volume_attachments: Cinder's attach protocol over RPC, undone in reverse on failure,
and run again by a server delete (volume-svc here is a fake recording the calls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import FakeVolumeService, cloud, private_vhost

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

            volumes.calls.clear()
            assert (await c.api.delete("p1", f"{path}/{VOLUME}")).status_code == 202
            assert volumes.calls == [
                ("begin_detaching", VOLUME),
                ("terminate_connection", VOLUME),
                ("detach", VOLUME),
            ]
            assert (await c.api.get("p1", path)).json()["volumeAttachments"] == []

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
