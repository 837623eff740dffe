"""Both sides of volume's RPC against one set of models.

The API's router serves exactly ``contracts.API`` (compute's ``volume`` contract plus
``host_state`` and ``audit``), the agent's exactly ``contracts.AGENT``, each method with the
contract's typed ``Method``; every request and reply model survives its wire form; and
what compute sends and reads today (untyped keyword arguments, dict replies) still works
against the typed service, next to the typed ``VolumeApi`` compute will use.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from volapi_helpers import volume_api

from common_rpc import RequestContext
from common_rpc.audit import AuditReport, Finding
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.context import use_context
from common_rpc.contracts import volume as cv
from common_rpc.errors import Forbidden, Invalid
from common_rpc.methods import Contract, Empty, Method
from volume_svc import contracts
from volume_svc.agent.handlers import rpc as agent_rpc
from volume_svc.rpc.handlers import rpc as api_rpc

CONNECTOR = cv.Connector(initiator="iqn.2010-10.org.stackling:c1", host="cn1", ip="10.0.0.5")
VOLUME = cv.VolumeInfo(
    id="v1",
    name="data",
    size=1,
    status="in-use",
    attachments=[
        cv.VolumeAttachment(
            id="v1", attachment_id="a1", volume_id="v1", server_id="s1", device="/dev/vdb"
        )
    ],
    metadata={"k": "v"},
    links=[cv.Link(rel="self", href="/v3/p1/volumes/v1")],
    project_id="p1",
)

# One sample of every model either contract carries (a new model needs one here).
SAMPLES: dict[type[BaseModel], BaseModel] = {
    Empty: Empty(),
    cv.VolumeRef: cv.VolumeRef(volume_id="v1"),
    cv.ConnectionRequest: cv.ConnectionRequest(volume_id="v1", connector=CONNECTOR),
    cv.AttachRequest: cv.AttachRequest(
        volume_id="v1", server_id="s1", host="cn1", mountpoint="/dev/vdb"
    ),
    cv.DetachRequest: cv.DetachRequest(volume_id="v1", server_id="s1"),
    cv.VolumeInfo: VOLUME,
    cv.ConnectionInfo: cv.ConnectionInfo(
        data=cv.IscsiConnectionData(
            target_iqn="iqn.2010-10.org.stackling:volume-v1",
            target_portal="[2001:db8::5]:3260",
            target_lun=1,
            volume_id="v1",
            auth_username="vol-v1",
            auth_password="s3cr3t",
        )
    ),
    cv.ConnectionTerminated: cv.ConnectionTerminated(volume_id="v1"),
    HostStateRequest: HostStateRequest(host="st1"),
    contracts.HostState: contracts.HostState(
        host="st1",
        volumes=["v1", "v2"],
        exports=[contracts.DesiredExport(volume_id="v1", initiator="iqn.x:c1", chap_secret="s")],
    ),
    AuditReport: AuditReport(
        service="volume",
        checked={"volumes": 2},
        findings=[Finding(kind="orphan", resource="target", id="v9", host="st1")],
    ),
    contracts.CreateVolume: contracts.CreateVolume(
        volume_id="v2",
        size_gb=2,
        image=contracts.ImageSource(
            image_id="i1",
            url="http://compute:8774/image/v2/images/i1/file",
            identity="signed",
            disk_format="qcow2",
            checksum="0" * 32,
            size_bytes=1 << 20,
        ),
    ),
    contracts.VolumeFile: contracts.VolumeFile(volume_id="v2", path="/srv/v2.img", size_gb=2),
    contracts.VolumeDeleted: contracts.VolumeDeleted(volume_id="v2"),
    contracts.ExtendVolume: contracts.ExtendVolume(volume_id="v2", size_gb=3),
    contracts.CreateSnapshot: contracts.CreateSnapshot(snapshot_id="s1", volume_id="v1"),
    contracts.SnapshotFile: contracts.SnapshotFile(snapshot_id="s1", path="/srv/s1.img"),
    contracts.SnapshotRef: contracts.SnapshotRef(snapshot_id="s1"),
    contracts.SnapshotDeleted: contracts.SnapshotDeleted(snapshot_id="s1"),
    contracts.ExportVolume: contracts.ExportVolume(
        volume_id="v1", initiator="iqn.x:c1", chap_secret="s"
    ),
    contracts.Exported: contracts.Exported(
        volume_id="v1",
        target_iqn="iqn.x:volume-v1",
        target_portal="127.0.0.1:3260",
        target_lun=1,
        auth_username="vol-v1",
    ),
    contracts.Unexported: contracts.Unexported(volume_id="v1"),
    contracts.Inventory: contracts.Inventory(
        volumes=["v1"],
        snapshots=["s1"],
        backups=["b1"],
        partial_backups=["b2"],
        exports={"v1": ["iqn.x:c1"]},
        target_helper="tgt",
    ),
    contracts.CreateBackup: contracts.CreateBackup(
        backup_id="b1", volume_id="v1", snapshot_id="s1"
    ),
    contracts.BackupFile: contracts.BackupFile(
        backup_id="b1", path="/srv/b1.img", size_bytes=1 << 30
    ),
    contracts.RestoreBackup: contracts.RestoreBackup(backup_id="b1", volume_id="v2", size_gb=2),
    contracts.BackupRef: contracts.BackupRef(backup_id="b1"),
    contracts.UploadImage: contracts.UploadImage(
        volume_id="v1",
        url="http://compute/image/v2/images/i2/file",
        identity="signed",
        disk_format="qcow2",
    ),
    contracts.ImageUploaded: contracts.ImageUploaded(volume_id="v1", size_bytes=1 << 20),
    contracts.BackupDeleted: contracts.BackupDeleted(backup_id="b1"),
}

ALL_METHODS = [*contracts.API.methods, *contracts.AGENT.methods]


def test_the_api_and_the_agent_serve_exactly_their_contracts() -> None:
    assert api_rpc.check(contracts.API) == []
    assert agent_rpc.check(contracts.AGENT) == []
    # What compute calls is part of what the API serves, under the same typed methods.
    assert cv.VOLUME.names == {
        "get_volume", "reserve", "initialize_connection", "attach", "begin_detaching",
        "terminate_connection", "detach", "unreserve", "roll_detaching",
    }  # fmt: skip
    assert all(contracts.API.method(m.name) is m for m in cv.VOLUME.methods)


def test_a_router_off_its_contract_is_reported() -> None:
    """The check above can fail: a missing and an extra method are both named."""
    assert agent_rpc.check(contracts.API) != []
    shrunk = Contract("volume.<host>", contracts.AGENT.methods[1:])
    assert agent_rpc.check(shrunk) == ["create_volume: served, not in the contract"]


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.name)
def test_every_request_and_reply_survives_its_wire_form(method: Method[Any, Any]) -> None:
    request, reply = SAMPLES[method.request], SAMPLES[method.reply]
    assert method.request.model_validate(method.arguments(request)) == request
    assert method.parse_reply(reply.model_dump(mode="json")) == reply


def test_what_compute_sends_and_reads_today_fits_the_models() -> None:
    """Compute's connector has ``multipath``; it reads ``data`` of the connection info and
    sends ``mountpoint`` (older callers ``device``); Cinder's extension keys keep their names."""
    sent = {
        "volume_id": "v1",
        "connector": {"host": "cn1", "initiator": "iqn.x:c1", "multipath": False},
    }
    assert cv.ConnectionRequest.model_validate(sent).connector.initiator == "iqn.x:c1"
    older = cv.AttachRequest.model_validate(
        {"volume_id": "v1", "server_id": "s1", "host": "cn1", "device": "/dev/vdc"}
    )
    assert (older.mountpoint, older.device) == (None, "/dev/vdc")
    wire = VOLUME.model_dump(mode="json")
    assert wire["os-vol-tenant-attr:tenant_id"] == "p1" and "project_id" not in wire
    assert cv.VolumeInfo.model_validate(wire) == VOLUME
    data = SAMPLES[cv.ConnectionInfo].model_dump(mode="json")["data"]
    assert {"target_iqn", "target_portal", "target_lun", "auth_username", "auth_password"} <= set(
        data
    )


async def test_the_typed_client_and_an_untyped_caller_against_the_service(tmp_path) -> None:
    """``VolumeApi`` over the real broker runs the attach protocol; an untyped caller (as
    compute calls today) gets the same JSON, a superset of the volume's HTTP view."""
    async with volume_api(tmp_path) as api:
        vid = (await api.volume("p1"))["id"]
        volume = cv.VolumeApi(api.rpc, topic=api.names.topic, timeout=20)
        connector = cv.Connector(initiator=api.names.initiator(), host="cn1", ip="127.0.0.1")
        member = RequestContext(project_id="p1", roles=frozenset({"member"}))
        with use_context(member):
            assert (await volume.reserve(vid)).status == "reserved"
            info = await volume.initialize_connection(vid, connector)
            assert info.data.target_iqn == f"{api.names.iqn_prefix}:volume-{vid}"
            assert info.data.auth_username == f"{api.names.prefix}vol-{vid}"
            attached = await volume.attach(vid, "s1", "/dev/vdb", "cn1")
            assert attached.status == "in-use"
            assert [(a.server_id, a.device) for a in attached.attachments] == [("s1", "/dev/vdb")]
            assert (await volume.begin_detaching(vid)).status == "detaching"
            assert (await volume.roll_detaching(vid)).status == "in-use"
            await volume.begin_detaching(vid)
            assert (await volume.terminate_connection(vid, connector)).terminated
            assert vid not in api.agent.host.target.exports
            assert (await volume.detach(vid, "s1")).attachments == []
            with pytest.raises(Invalid):
                await volume.initialize_connection(vid, cv.Connector(initiator="not an iqn"))
            typed = await volume.get_volume(vid)

        raw = await api.call("p1", "get_volume", volume_id=vid)
        assert raw == typed.model_dump(mode="json")
        shown = (await api.get("p1", f"/volumes/{vid}")).json()["volume"]
        assert set(shown) <= set(raw)
        assert {k: v for k, v in shown.items() if k != "links"} == {
            k: raw[k] for k in shown if k != "links"
        }
        # The agent's reconcile asked host_state with the service's identity only.
        with use_context(member), pytest.raises(Forbidden, match="own agents"):
            await api.rpc.invoke(
                api.names.topic, contracts.HOST_STATE, HostStateRequest(host=api.names.host)
            )
