"""The compute-side contract on the volume topic, the status machine and parallel quotas.

The agent here uses the fake target helper (exports in memory): the real iSCSI path is
covered by test_volume_iscsi.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from volapi_helpers import temp_postgres, volume_api

from common_rpc import RequestContext
from common_rpc.context import use_context
from common_rpc.errors import Invalid, NotFound
from volume_svc.db.models import Volume
from volume_svc.drivers.base import ExportSpec


async def test_attach_detach_contract_and_illegal_transitions(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        vid = vol["id"]
        connector = {"initiator": api.names.initiator(), "host": "cn1", "ip": "127.0.0.1"}
        fake = api.agent.host.target

        with pytest.raises(NotFound):
            await api.call("p2", "reserve", volume_id=vid)
        with pytest.raises(Invalid):  # not reserved yet
            await api.call("p1", "attach", volume_id=vid, server_id="s1", mountpoint="/dev/vdb",
                           host="cn1")  # fmt: skip

        reserved = await api.call("p1", "reserve", volume_id=vid)
        assert reserved["status"] == "reserved"
        with pytest.raises(Invalid):
            await api.call("p1", "reserve", volume_id=vid)
        assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 400

        info = await api.call("p1", "initialize_connection", volume_id=vid, connector=connector)
        assert info["driver_volume_type"] == "iscsi"
        data = info["data"]
        assert data["target_iqn"] == f"{api.names.iqn_prefix}:volume-{vid}"
        assert data["auth_method"] == "CHAP" and len(data["auth_password"]) >= 12
        assert data["auth_username"] == f"{api.names.prefix}vol-{vid}"
        assert fake.exports[vid].initiators == (connector["initiator"],)
        with pytest.raises(Invalid):
            bad = {"initiator": "not an iqn; rm -rf /"}
            await api.call("p1", "initialize_connection", volume_id=vid, connector=bad)

        attached = await api.call(
            "p1", "attach", volume_id=vid, server_id="s1", device="/dev/vdb", host="cn1"
        )
        assert attached["status"] == "in-use"
        assert attached["attachments"][0]["server_id"] == "s1"
        assert attached["attachments"][0]["device"] == "/dev/vdb"
        shown = (await api.get("p1", f"/volumes/{vid}")).json()["volume"]
        assert shown["status"] == "in-use" and shown["attachments"][0]["host_name"] == "cn1"

        # Attached: no second attach, no delete, no extend.
        with pytest.raises(Invalid):
            await api.call("p1", "reserve", volume_id=vid)
        resp = await api.delete("p1", f"/volumes/{vid}")
        assert resp.status_code == 400 and "attached" in resp.json()["badRequest"]["message"]
        extend = {"os-extend": {"new_size": 2}}
        assert (await api.post("p1", f"/volumes/{vid}/action", extend)).status_code == 400
        assert (await api.audit())["findings"] == []

        assert (await api.call("p1", "begin_detaching", volume_id=vid))["status"] == "detaching"
        await api.call("p1", "terminate_connection", volume_id=vid, connector=connector)
        assert vid not in fake.exports
        with pytest.raises(Invalid):
            await api.call("p1", "detach", volume_id=vid, server_id="other")
        detached = await api.call("p1", "detach", volume_id=vid, server_id="s1")
        assert detached["status"] == "available" and detached["attachments"] == []

        # A failed attach is undone by unreserve, which also removes the export.
        await api.call("p1", "reserve", volume_id=vid)
        await api.call("p1", "initialize_connection", volume_id=vid, connector=connector)
        assert vid in fake.exports
        assert (await api.call("p1", "unreserve", volume_id=vid))["status"] == "available"
        assert vid not in fake.exports

        kinds = [kind for kind, _ in await api.events()]
        assert "volume.volume.attach.end" in kinds and "volume.volume.detach.end" in kinds
        attach_payload = next(p for k, p in await api.events() if k.endswith("attach.end"))
        assert attach_payload["attachments"][0]["server_id"] == "s1"
        assert (await api.audit())["findings"] == []


async def test_retried_reserve_with_an_op_id_runs_once(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        ctx = RequestContext(project_id="p1", roles=frozenset({"member"}))
        with use_context(ctx):
            first = await api.rpc.call(
                api.names.topic, "reserve", volume_id=vol["id"], op_id="op-1", timeout=20
            )
            again = await api.rpc.call(
                api.names.topic, "reserve", volume_id=vol["id"], op_id="op-1", timeout=20
            )
        assert first["status"] == again["status"] == "reserved"


async def test_twenty_parallel_creates_against_a_quota_of_ten(tmp_path) -> None:
    await _quota_storm(tmp_path)


async def test_twenty_parallel_creates_against_a_quota_of_ten_on_postgresql(tmp_path) -> None:
    async with temp_postgres() as url:
        await _quota_storm(tmp_path, db_url=url)


async def _quota_storm(tmp_path, **settings: object) -> None:
    async with volume_api(tmp_path, quota_volumes=10, **settings) as api:
        body = {"volume": {"size": 1}}
        replies = await asyncio.gather(*(api.post("p1", "/volumes", body) for _ in range(20)))
        codes = sorted(r.status_code for r in replies)
        assert codes == [202] * 10 + [413] * 10
        ids = [r.json()["volume"]["id"] for r in replies if r.status_code == 202]
        for vid in ids:
            await api.wait_status("p1", "volumes", vid, "available")
        quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
        assert quota["volumes"] == {"limit": 10, "in_use": 10, "reserved": 0, "allocated": 0}
        assert len(api.agent.host.backend.list_volumes()) == 10
        # Deleting gives the quota back.
        for vid in ids:
            assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
        for vid in ids:
            await api.wait_status("p1", "volumes", vid, "deleted")
        quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
        assert quota["volumes"]["in_use"] == 0 and quota["gigabytes"]["in_use"] == 0
        assert api.agent.host.backend.list_volumes() == frozenset()


async def test_audit_finds_orphans_and_stuck_rows_and_the_sweeper_settles_them(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        backend = api.agent.host.backend
        stray = backend.volume_path("00000000-stray")
        stray.write_bytes(b"")
        api.agent.host.target.export(
            ExportSpec("11111111-ghost", stray, api.names.initiator(), "u", "s" * 16)
        )
        sessions = api.app.state.runtime.sessions
        async with sessions.begin() as session:
            await session.execute(
                update(Volume)
                .where(Volume.id == vol["id"])
                .values(status="attaching", task_deadline=datetime.now(UTC) - timedelta(1))
            )
        found = {(f["kind"], f["resource"], f["id"]) for f in (await api.audit())["findings"]}
        assert found == {
            ("orphan", "volume_file", "00000000-stray"),
            ("orphan", "target", "11111111-ghost"),
            ("stuck", "volume", vol["id"]),
        }
        assert await api.app.state.runtime.sweeper.sweep_once() == 1
        shown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert shown["status"] == "available"
        stray.unlink()
        api.agent.host.target.unexport("11111111-ghost")
        assert (await api.audit())["findings"] == []


async def test_roll_detaching_puts_a_failed_detach_back_in_use(tmp_path) -> None:
    """Cinder's roll_detaching, over RPC (compute's detach that failed) and as the volume
    action ``os-roll_detaching``: only ``detaching`` moves; another project's is a 404."""
    async with volume_api(tmp_path) as api:
        vid = (await api.volume("p1"))["id"]
        connector = {"initiator": api.names.initiator(), "host": "cn1", "ip": "127.0.0.1"}
        rolled = await api.call("p1", "roll_detaching", volume_id=vid)
        assert rolled["status"] == "available"  # not detaching: nothing changes
        await api.call("p1", "reserve", volume_id=vid)
        await api.call("p1", "initialize_connection", volume_id=vid, connector=connector)
        await api.call("p1", "attach", volume_id=vid, server_id="s1", mountpoint="/dev/vdb",
                       host="cn1")  # fmt: skip
        assert (await api.call("p1", "begin_detaching", volume_id=vid))["status"] == "detaching"
        with pytest.raises(NotFound):
            await api.call("p2", "roll_detaching", volume_id=vid)
        rolled = await api.call("p1", "roll_detaching", volume_id=vid)
        assert rolled["status"] == "in-use"
        assert rolled["attachments"][0]["server_id"] == "s1"
        assert vid in api.agent.host.target.exports  # the export stays with the attachment
        assert (await api.call("p1", "roll_detaching", volume_id=vid))["status"] == "in-use"

        # The same through the volume API.
        await api.call("p1", "begin_detaching", volume_id=vid)
        action = {"os-roll_detaching": None}
        other = await api.post("p2", f"/volumes/{vid}/action", action)
        assert other.status_code == 404, other.text
        resp = await api.post("p1", f"/volumes/{vid}/action", action)
        assert resp.status_code == 202, resp.text
        shown = (await api.get("p1", f"/volumes/{vid}")).json()["volume"]
        assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == "s1"
        updates = [p["status"] for k, p in await api.events() if k == "volume.volume.update.end"]
        assert updates == ["in-use", "in-use"]
        assert (await api.audit())["findings"] == []
