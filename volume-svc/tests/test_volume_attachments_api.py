"""The attachments API (Cinder 3.27+ shapes, ``os-complete``) on the same volumes, rows and
status machine as compute's attach protocol over RPC, which keeps working beside it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from volapi_helpers import Api, volume_api

from common_rpc.errors import Invalid

SUMMARY_KEYS = {"id", "status", "instance", "volume_id"}
DETAIL_KEYS = SUMMARY_KEYS | {"attached_at", "detached_at", "attach_mode", "connection_info"}


def _connector(api: Api) -> dict[str, Any]:
    return {"initiator": api.names.initiator(), "host": "cn1", "ip": "127.0.0.1"}


async def _volume_status(api: Api, vid: str) -> str:
    return (await api.get("p1", f"/volumes/{vid}")).json()["volume"]["status"]


async def test_reserve_connect_complete_and_delete(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        vid, server = vol["id"], str(uuid.uuid4())
        fake = api.agent.host.target

        body = {"attachment": {"volume_uuid": vid, "instance_uuid": server}}
        resp = await api.post("p1", "/attachments", body)
        assert resp.status_code == 200, resp.text
        att = resp.json()["attachment"]
        assert set(att) == DETAIL_KEYS
        assert (att["status"], att["instance"], att["volume_id"]) == ("reserved", server, vid)
        assert att["attach_mode"] == "rw" and att["connection_info"] is None
        aid = att["id"]
        shown = (await api.get("p1", f"/volumes/{vid}")).json()["volume"]
        assert shown["status"] == "reserved" and shown["attachments"] == []
        # Compute cannot take a volume the attachments API holds.
        with pytest.raises(Invalid):
            await api.call("p1", "reserve", volume_id=vid)
        with pytest.raises(Invalid):
            await api.call(
                "p1", "attach", volume_id=vid, server_id=server, device="/dev/vdb", host="cn1"
            )
        with pytest.raises(Invalid):
            await api.call("p1", "unreserve", volume_id=vid)

        # os-complete needs a connection first.
        resp = await api.post("p1", f"/attachments/{aid}/action", {"os-complete": None})
        assert resp.status_code == 400
        resp = await api.put(
            "p1", f"/attachments/{aid}", {"attachment": {"connector": _connector(api)}}
        )
        assert resp.status_code == 200, resp.text
        att = resp.json()["attachment"]
        assert att["status"] == "attaching" and await _volume_status(api, vid) == "attaching"
        info = att["connection_info"]
        assert info["driver_volume_type"] == "iscsi"
        assert info["data"]["target_iqn"] == f"{api.names.iqn_prefix}:volume-{vid}"
        assert fake.exports[vid].initiators == (api.names.initiator(),)

        resp = await api.post("p1", f"/attachments/{aid}/action", {"os-complete": None})
        assert resp.status_code == 204, resp.text
        shown = (await api.get("p1", f"/volumes/{vid}")).json()["volume"]
        assert shown["status"] == "in-use"
        assert [(a["attachment_id"], a["server_id"]) for a in shown["attachments"]] == [
            (aid, server)
        ]
        att = (await api.get("p1", f"/attachments/{aid}")).json()["attachment"]
        assert att["status"] == "attached" and att["attached_at"]
        listed = (await api.get("p1", "/attachments")).json()["attachments"]
        assert listed == [{"id": aid, "status": "attached", "instance": server, "volume_id": vid}]
        detail = (await api.get("p1", "/attachments/detail")).json()["attachments"]
        assert detail == [att]
        assert (await api.get("p1", f"/attachments?volume_id={vid}")).json()["attachments"]
        assert (await api.get("p1", f"/attachments?instance_id={server}")).json()["attachments"]
        assert (await api.get("p1", "/attachments?instance_id=other")).json() == {"attachments": []}
        assert (await api.get("p2", f"/attachments/{aid}")).status_code == 404
        assert (await api.get("p2", "/attachments")).json() == {"attachments": []}
        assert (await api.delete("p2", f"/attachments/{aid}")).status_code == 404
        assert (await api.audit())["findings"] == []

        resp = await api.delete("p1", f"/attachments/{aid}")
        assert resp.status_code == 200 and resp.json() == {"attachments": []}
        assert await _volume_status(api, vid) == "available"
        assert vid not in fake.exports
        assert (await api.get("p1", f"/attachments/{aid}")).status_code == 404
        kinds = [kind for kind, _ in await api.events()]
        assert "volume.volume.attach.end" in kinds and "volume.volume.detach.end" in kinds
        assert (await api.audit())["findings"] == []

        # Compute's protocol works on the volume again afterwards.
        await api.call("p1", "reserve", volume_id=vid)
        await api.call("p1", "unreserve", volume_id=vid)
        assert await _volume_status(api, vid) == "available"


async def test_create_with_connector_readonly_and_delete_while_attaching(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        vid = vol["id"]
        flag = {"os-update_readonly_flag": {"readonly": True}}
        assert (await api.post("p1", f"/volumes/{vid}/action", flag)).status_code == 202
        body = {"attachment": {"volume_uuid": vid, "connector": _connector(api)}}
        resp = await api.post("p1", "/attachments", body)
        assert resp.status_code == 200, resp.text
        att = resp.json()["attachment"]
        assert att["status"] == "attaching" and att["instance"] is None
        assert att["attach_mode"] == "ro" and att["connection_info"]["data"]["volume_id"] == vid
        assert vid in api.agent.host.target.exports
        resp = await api.delete("p1", f"/attachments/{att['id']}")
        assert resp.status_code == 200
        assert await _volume_status(api, vid) == "available"
        assert vid not in api.agent.host.target.exports
        assert (await api.audit())["findings"] == []


async def test_computes_attachments_are_listed_but_left_to_compute(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        vid = vol["id"]
        await api.call("p1", "reserve", volume_id=vid)
        # A volume compute reserved is not the attachments API's to take.
        body = {"attachment": {"volume_uuid": vid, "instance_uuid": str(uuid.uuid4())}}
        resp = await api.post("p1", "/attachments", body)
        assert resp.status_code == 400 and "must be available" in resp.text
        await api.call("p1", "initialize_connection", volume_id=vid, connector=_connector(api))
        await api.call("p1", "attach", volume_id=vid, server_id="s1", device="/dev/vdb", host="cn1")

        (att,) = (await api.get("p1", "/attachments/detail")).json()["attachments"]
        assert (att["status"], att["instance"], att["attach_mode"]) == ("attached", "s1", "rw")
        shown = (await api.get("p1", f"/volumes/{vid}")).json()["volume"]
        assert shown["attachments"][0]["attachment_id"] == att["id"]
        resp = await api.delete("p1", f"/attachments/{att['id']}")
        assert resp.status_code == 400 and "compute" in resp.json()["badRequest"]["message"]
        connector = {"attachment": {"connector": _connector(api)}}
        assert (await api.put("p1", f"/attachments/{att['id']}", connector)).status_code == 400
        assert await _volume_status(api, vid) == "in-use"

        # Compute detaches as before.
        await api.call("p1", "begin_detaching", volume_id=vid)
        await api.call("p1", "terminate_connection", volume_id=vid, connector=_connector(api))
        await api.call("p1", "detach", volume_id=vid, server_id="s1")
        assert (await api.get("p1", "/attachments")).json() == {"attachments": []}
        assert (await api.audit())["findings"] == []


async def test_attachment_faults(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        vid = vol["id"]
        missing = str(uuid.uuid4())
        faults = [
            ("post", "/attachments", {"attachment": {"volume_uuid": missing}}, 404,
             f"Volume {missing} could not be found."),
            ("post", "/attachments", {"attachment": {}}, 400,
             "'volume_uuid' is a required property"),
            ("post", "/attachments", {"attachment": {"volume_uuid": "nope"}}, 400,
             "Invalid input for field/attribute volume_uuid"),
            ("post", "/attachments", {"attachment": {"volume_uuid": vid, "mode": "rx"}}, 400,
             "Invalid input for field/attribute mode"),
            ("post", "/attachments", {"attachment": {"volume_uuid": vid, "x": 1}}, 400,
             "Additional properties are not allowed"),
            ("post", "/attachments", {"attachment": {"volume_uuid": vid, "connector": "c"}}, 400,
             "is not of type 'object'"),
            ("post", "/attachments", {"volume_uuid": vid}, 400,
             "'attachment' is a required property"),
            ("get", f"/attachments/{missing}", None, 404,
             f"VolumeAttachment {missing} could not be found."),
            ("put", f"/attachments/{missing}", {"attachment": {"connector": {"initiator": "x"}}},
             404, f"VolumeAttachment {missing} could not be found."),
            ("delete", f"/attachments/{missing}", None, 404,
             f"VolumeAttachment {missing} could not be found."),
            ("post", f"/attachments/{missing}/action", {"os-frobnicate": None}, 404,
             f"VolumeAttachment {missing} could not be found."),
        ]  # fmt: skip
        for method, path, body, status, message in faults:
            args = () if body is None else (body,)
            resp = await getattr(api, method)("p1", path, *args)
            assert resp.status_code == status, (path, body, resp.text)
            ((_key, fault),) = resp.json().items()
            assert message in fault["message"], resp.text

        resp = await api.post("p1", "/attachments", {"attachment": {"volume_uuid": vid}})
        aid = resp.json()["attachment"]["id"]
        bad_connectors = [{"initiator": "not an iqn; rm -rf /"}, {"host": "cn1"}, {"initiator": 5}]
        for connector in bad_connectors:
            resp = await api.put(
                "p1", f"/attachments/{aid}", {"attachment": {"connector": connector}}
            )
            assert resp.status_code == 400, (connector, resp.text)
        resp = await api.post("p1", f"/attachments/{aid}/action", {"os-frobnicate": None})
        assert resp.status_code == 400 and "no such action" in resp.text
        # Nothing was exported by the refused connectors; the reservation is still there.
        assert vid not in api.agent.host.target.exports
        assert await _volume_status(api, vid) == "reserved"
        assert (await api.delete("p1", f"/attachments/{aid}")).status_code == 200
        assert (await api.audit())["findings"] == []
