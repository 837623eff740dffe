"""Volume backups (``openstack volume backup create/list/show/restore/delete``): Cinder's
v3 ``/backups`` over the real file backend and the file backup store, restore to a new
or an existing volume, quotas, events, failures that settle, and the sweeper.

The fake target here (the copies are files); test_volume_backups_iscsi.py writes and
reads the pattern through real tgt exports.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from volapi_helpers import Api, volume_api

from volume_svc.db.models import Backup, Volume

MIB = 1 << 20
SUMMARY_KEYS = {"id", "name", "links"}
DETAIL_KEYS = SUMMARY_KEYS | {
    "status", "size", "object_count", "availability_zone", "container", "created_at",
    "updated_at", "description", "fail_reason", "volume_id", "is_incremental",
    "has_dependent_backups", "snapshot_id", "data_timestamp", "metadata", "user_id",
    "encryption_key_id",
}  # fmt: skip


def _write(api: Api, volume_id: str, byte: int, offset: int = 0) -> None:
    """Write one MiB of ``byte`` into the volume's file (what a guest would have written)."""
    assert api.agent is not None
    with open(api.agent.host.backend.volume_path(volume_id), "r+b") as f:
        f.seek(offset)
        f.write(bytes([byte]) * MIB)


def _read(api: Api, volume_id: str, offset: int = 0) -> bytes:
    assert api.agent is not None
    with open(api.agent.host.backend.volume_path(volume_id), "rb") as f:
        f.seek(offset)
        return f.read(MIB)


async def _usage(api: Api, project: str) -> dict[str, int]:
    resp = await api.get(project, f"/os-quota-sets/{project}?usage=True", "admin")
    quota = resp.json()["quota_set"]
    keys = ("volumes", "gigabytes", "backups", "backup_gigabytes")
    return {k: quota[k]["in_use"] for k in keys}


async def _backup(api: Api, project: str, volume_id: str, **extra: Any) -> dict[str, Any]:
    resp = await api.post(project, "/backups", {"backup": {"volume_id": volume_id, **extra}})
    assert resp.status_code == 202, resp.text
    created = resp.json()["backup"]
    assert set(created) == SUMMARY_KEYS
    return created


async def _settled(api: Api, project: str, kind: str, item_id: str, *away: str) -> dict:
    """Poll until the item's status is none of ``away``; its view then."""
    singular = kind[:-1]
    async with asyncio.timeout(30):
        while True:
            shown = (await api.get(project, f"/{kind}/{item_id}")).json()[singular]
            if shown["status"] not in away:
                return shown
            await asyncio.sleep(0.05)


async def test_backup_list_show_restore_new_and_existing_delete_quota_events(
    tmp_path: Path,
) -> None:
    async with volume_api(tmp_path) as api:
        assert api.agent is not None
        store = api.agent.host.backups
        assert store is not None
        vol = await api.volume("p1", size=1, name="data")
        _write(api, vol["id"], 0xA5)

        created = await _backup(api, "p1", vol["id"], name="nightly", description="d")
        bid = created["id"]
        assert created["name"] == "nightly"
        assert created["links"][0]["href"].endswith(f"/v3/p1/backups/{bid}")
        shown = await api.wait_status("p1", "backups", bid, "available")
        assert set(shown) == DETAIL_KEYS
        assert shown["volume_id"] == vol["id"] and shown["size"] == 1
        assert shown["object_count"] == 1 and shown["is_incremental"] is False
        # The volume was held backing-up only while the copy was made.
        assert (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"][
            "status"
        ] == "available"
        assert store.backup_path(bid).read_bytes()[:MIB] == b"\xa5" * MIB
        assert await _usage(api, "p1") == {
            "volumes": 1, "gigabytes": 1, "backups": 1, "backup_gigabytes": 1,
        }  # fmt: skip
        limits = (await api.get("p1", "/limits")).json()["limits"]["absolute"]
        assert limits["totalBackupsUsed"] == 1 and limits["maxTotalBackups"] == 10

        listed = (await api.get("p1", "/backups")).json()["backups"]
        assert [set(b) for b in listed] == [SUMMARY_KEYS] and listed[0]["id"] == bid
        detail = (await api.get("p1", "/backups/detail?name=nightly")).json()["backups"]
        assert [b["id"] for b in detail] == [bid]
        assert (await api.get("p1", "/backups/detail?name=other")).json()["backups"] == []
        # Another project sees nothing of it.
        assert (await api.get("p2", f"/backups/{bid}")).status_code == 404
        assert (await api.get("p2", "/backups")).json()["backups"] == []
        assert (await api.delete("p2", f"/backups/{bid}")).status_code == 404

        # Restore to a new volume: the backup's bytes, its size, the name asked for.
        resp = await api.post("p1", f"/backups/{bid}/restore", {"restore": {"name": "back"}})
        assert resp.status_code == 202, resp.text
        restore = resp.json()["restore"]
        assert restore["backup_id"] == bid and restore["volume_name"] == "back"
        new = await api.wait_status("p1", "volumes", restore["volume_id"], "available")
        assert new["size"] == 1 and new["name"] == "back"
        assert _read(api, new["id"]) == b"\xa5" * MIB
        assert (await api.get("p1", f"/backups/{bid}")).json()["backup"]["status"] == "available"

        # Restore over the original, changed since: the old bytes are back.
        _write(api, vol["id"], 0x5A)
        resp = await api.post(
            "p1", f"/backups/{bid}/restore", {"restore": {"volume_id": vol["id"]}}
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["restore"] == {
            "backup_id": bid, "volume_id": vol["id"], "volume_name": "data",
        }  # fmt: skip
        await api.wait_status("p1", "volumes", vol["id"], "available")
        assert _read(api, vol["id"]) == b"\xa5" * MIB
        assert (await api.audit())["findings"] == []

        assert (await api.delete("p1", f"/backups/{bid}")).status_code == 202
        await api.wait_status("p1", "backups", bid, "deleted")
        assert store.list_backups() == frozenset()
        types = [t for t, _ in await api.events() if t.startswith("volume.backup.")]
        assert types == [
            "volume.backup.create.end",
            "volume.backup.restore.end",
            "volume.backup.restore.end",
            "volume.backup.delete.end",
        ]
        for vid in (vol["id"], new["id"]):
            assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
            await api.wait_status("p1", "volumes", vid, "deleted")
        assert await _usage(api, "p1") == dict.fromkeys(
            ("volumes", "gigabytes", "backups", "backup_gigabytes"), 0
        )
        assert (await api.audit())["findings"] == []


async def test_in_use_needs_force_and_stays_attached_refusals_and_quotas(tmp_path: Path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=2)
        connector = {"initiator": api.names.initiator(), "host": "cn1", "ip": "127.0.0.1"}
        await api.call("p1", "reserve", volume_id=vol["id"])
        await api.call("p1", "initialize_connection", volume_id=vol["id"], connector=connector)
        await api.call(
            "p1", "attach", volume_id=vol["id"], server_id="s1", mountpoint="/dev/vdb", host="cn1"
        )
        body = {"backup": {"volume_id": vol["id"]}}
        refused = await api.post("p1", "/backups", body)
        assert refused.status_code == 400
        assert "must use the force flag" in refused.json()["badRequest"]["message"]
        forced = await _backup(api, "p1", vol["id"], force=True)
        await api.wait_status("p1", "backups", forced["id"], "available")
        # An attached volume stays attached and in use through its backup.
        shown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert shown["status"] == "in-use" and shown["attachments"]

        # A restore needs an available volume at least as large as the backup.
        small = await api.volume("p1", size=1)
        restore = {"restore": {"volume_id": small["id"]}}
        too_small = await api.post("p1", f"/backups/{forced['id']}/restore", restore)
        assert too_small.status_code == 400 and "too small" in too_small.text
        restore = {"restore": {"volume_id": vol["id"]}}
        busy = await api.post("p1", f"/backups/{forced['id']}/restore", restore)
        assert busy.status_code == 400 and "must be available" in busy.text

        # Input and lookups answer 4xx with Cinder's bodies, never 500.
        missing = "00000000-0000-0000-0000-000000000000"
        cases = [
            ({"backup": {"volume_id": missing}}, 404),
            ({"backup": {"volume_id": "not-a-uuid"}}, 400),
            ({"backup": {}}, 400),
            ({"backup": {"volume_id": small["id"], "bogus": 1}}, 400),
            ({"backup": {"volume_id": small["id"], "incremental": True}}, 400),
            ({"backup": {"volume_id": small["id"], "force": "maybe"}}, 400),
            ([], 400),
        ]
        for payload, code in cases:
            resp = await api.post("p1", "/backups", payload)
            assert resp.status_code == code, (payload, resp.text)
        assert (await api.get("p1", f"/backups/{missing}")).status_code == 404
        bad = await api.post("p1", f"/backups/{forced['id']}/restore", {"restore": 3})
        assert bad.status_code == 400
        # Another project's volume is not found, nor may it be restored over.
        other = await api.post("p2", "/backups", {"backup": {"volume_id": small["id"]}})
        assert other.status_code == 404
        restore = {"restore": None}
        assert (
            await api.post("p2", f"/backups/{forced['id']}/restore", restore)
        ).status_code == 404

        # Quotas: a second backup is over the count, a large one over the gigabytes.
        await api.put("p1", "/os-quota-sets/p1", {"quota_set": {"backups": 1}}, "admin")
        over = await api.post("p1", "/backups", {"backup": {"volume_id": small["id"]}})
        assert over.status_code == 413
        assert "Maximum number of backups allowed (1)" in over.json()["overLimit"]["message"]
        await api.put(
            "p1", "/os-quota-sets/p1", {"quota_set": {"backups": 5, "backup_gigabytes": 2}},
            "admin",
        )  # fmt: skip
        over = await api.post("p1", "/backups", {"backup": {"volume_id": small["id"]}})
        assert over.status_code == 413 and "Backup gigabytes" in over.text
        # Nothing was taken by the refused ones.
        assert (await _usage(api, "p1"))["backups"] == 1
        shown = (await api.get("p1", f"/volumes/{small['id']}")).json()["volume"]
        assert shown["status"] == "available"

        # A member may not reset a backup's status; an admin may.
        action = {"os-reset_status": {"status": "error"}}
        path = f"/backups/{forced['id']}/action"
        assert (await api.post("p1", path, action)).status_code == 403
        assert (await api.post("p1", path, action, "admin")).status_code == 202
        assert (await api.delete("p1", f"/backups/{forced['id']}")).status_code == 202
        await api.wait_status("p1", "backups", forced["id"], "deleted")
        assert (await api.audit())["findings"] == []


async def test_failed_backup_and_restores_settle_and_leave_nothing(tmp_path: Path) -> None:
    async with volume_api(tmp_path) as api:
        assert api.agent is not None
        backend, store = api.agent.host.backend, api.agent.host.backups
        assert store is not None
        vol = await api.volume("p1", size=1)
        _write(api, vol["id"], 0x11)
        good = await _backup(api, "p1", vol["id"])
        await api.wait_status("p1", "backups", good["id"], "available")

        # The volume's file vanishes behind the service's back: the copy fails.
        path = backend.volume_path(vol["id"])
        saved = path.read_bytes()
        path.unlink()
        failed = await _backup(api, "p1", vol["id"])
        shown = await _settled(api, "p1", "backups", failed["id"], "creating")
        assert shown["status"] == "error" and shown["fail_reason"]
        assert failed["id"] not in store.list_backups()
        assert store.list_partial() == frozenset()
        # The volume is not left backing-up.
        vshown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert vshown["status"] == "available"
        path.write_bytes(saved)
        assert (await api.delete("p1", f"/backups/{failed['id']}")).status_code == 202
        await api.wait_status("p1", "backups", failed["id"], "deleted")

        # The good backup's copy vanishes: a restore to a new volume ends in error (no
        # file), one over an existing volume in error_restoring; the backup is usable.
        copy = store.backup_path(good["id"])
        kept = copy.read_bytes()
        copy.unlink()
        resp = await api.post("p1", f"/backups/{good['id']}/restore", {"restore": None})
        assert resp.status_code == 202, resp.text
        new_id = resp.json()["restore"]["volume_id"]
        new = await _settled(api, "p1", "volumes", new_id, "restoring-backup")
        assert new["status"] == "error"
        assert new_id not in backend.list_volumes()
        await _settled(api, "p1", "backups", good["id"], "restoring")
        restore = {"restore": {"volume_id": vol["id"]}}
        resp = await api.post("p1", f"/backups/{good['id']}/restore", restore)
        assert resp.status_code == 202, resp.text
        over = await _settled(api, "p1", "volumes", vol["id"], "restoring-backup")
        assert over["status"] == "error_restoring"
        shown = await _settled(api, "p1", "backups", good["id"], "restoring")
        assert shown["status"] == "available"
        report = await api.audit()
        assert [(f["kind"], f["resource"]) for f in report["findings"]] == [
            ("missing", "backup_file")
        ]
        copy.write_bytes(kept)
        assert (await api.audit())["findings"] == []
        for vid in (new_id, vol["id"]):
            assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
            await api.wait_status("p1", "volumes", vid, "deleted")
        assert (await api.delete("p1", f"/backups/{good['id']}")).status_code == 202
        await api.wait_status("p1", "backups", good["id"], "deleted")
        assert backend.list_volumes() == frozenset() and store.list_backups() == frozenset()
        assert (await api.audit())["findings"] == []


async def test_agent_down_and_a_dead_api_process_end_settled(tmp_path: Path) -> None:
    """The agent does not answer: the backup is error within the copy deadline. The API
    process dies mid-flow (its flows cancelled, as a SIGKILL leaves them): the sweeper
    moves every state past its deadline on, and nothing is stuck or leaked."""
    async with volume_api(tmp_path, agent_copy_timeout=1.0) as api:
        assert api.agent is not None
        vol = await api.volume("p1", size=1)
        await api.agent.stop()
        try:
            quick = await _backup(api, "p1", vol["id"])
            shown = await _settled(api, "p1", "backups", quick["id"], "creating")
            assert shown["status"] == "error"
            vshown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
            assert vshown["status"] == "available"

            stuck = await _backup(api, "p1", vol["id"])
            # The process dies: its flow never finishes.
            await api.app.state.deps.tasks.drain(timeout=0)
            deps = api.app.state.deps
            async with deps.sessions() as session, session.begin():
                past = datetime.now(UTC) - timedelta(seconds=1)
                for model in (Backup, Volume):
                    await session.execute(
                        update(model)
                        .where(model.task_deadline.is_not(None))
                        .values(task_deadline=past)
                    )
            sweeper = api.app.state.runtime.sweeper
            assert await sweeper.sweep_once() >= 2
            shown = (await api.get("p1", f"/backups/{stuck['id']}")).json()["backup"]
            assert shown["status"] == "error"
            vshown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
            assert vshown["status"] == "available"
        finally:
            # The requests the agent missed expire first (their deadline, 1 s, and grace).
            await asyncio.sleep(2.5)
            await api.agent.start()
        for bid in (quick["id"], stuck["id"]):
            assert (await api.delete("p1", f"/backups/{bid}")).status_code == 202
            await api.wait_status("p1", "backups", bid, "deleted")
        assert api.agent.host.backups.list_backups() == frozenset()
        assert api.agent.host.backups.list_partial() == frozenset()
        assert (await api.audit())["findings"] == []
