"""Volumes through real iSCSI: tgt exports, QEMU's initiator writes and reads them.

Each test runs its own tgtd (iscsi_fixtures.tgtd) and the real volume-agent with the
file backend; names carry the test's prefix and are removed afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from iscsi_fixtures import Tgtd, needs_tgt, pattern_ok, qemu_io, tgtd_fixture  # noqa: F401
from volapi_helpers import Api, volume_api

from common_rpc.chassis import commands
from volume_svc.agent.main import build
from volume_svc.drivers.base import DriverError
from volume_svc.drivers.tgt import TgtTarget

MIB = 1 << 20
pytestmark = needs_tgt


def _tgt_agent(daemon: Tgtd) -> dict[str, Any]:
    return {
        "agent_target_helper": "tgt",
        "agent_tgt_control_port": daemon.control_port,
        "agent_portal": daemon.portal,
    }


async def _attach(api: Api, project: str, vid: str, initiator: str, server: str) -> dict:
    connector = {"initiator": initiator, "host": "cn1", "ip": "127.0.0.1"}
    await api.call(project, "reserve", volume_id=vid)
    info = await api.call(project, "initialize_connection", volume_id=vid, connector=connector)
    await api.call(
        project, "attach", volume_id=vid, server_id=server, mountpoint="/dev/vdb", host="cn1"
    )
    return info["data"]


async def _detach(api: Api, project: str, vid: str, initiator: str, server: str) -> None:
    connector = {"initiator": initiator, "host": "cn1", "ip": "127.0.0.1"}
    await api.call(project, "begin_detaching", volume_id=vid)
    await api.call(project, "terminate_connection", volume_id=vid, connector=connector)
    await api.call(project, "detach", volume_id=vid, server_id=server)


async def test_pattern_through_iscsi_snapshot_clone_and_refused_logins(
    tmp_path: Path, tgtd: Tgtd
) -> None:
    async with volume_api(tmp_path, agent=_tgt_agent(tgtd)) as api:
        me, other = api.names.initiator("c1"), api.names.initiator("c2")
        vol = await api.volume("p1", size=1)
        data = await _attach(api, "p1", vol["id"], me, "s1")
        assert data["target_portal"] == tgtd.portal and data["target_lun"] == 1

        wrote = qemu_io(tmp_path, data, f"write -P 0xa5 0 {MIB}", "flush", initiator=me)
        assert pattern_ok(wrote), wrote.stdout + wrote.stderr
        # Another connection (a new login) reads what the first one wrote.
        read = qemu_io(tmp_path, data, f"read -P 0xa5 0 {MIB}", initiator=me)
        assert pattern_ok(read), read.stdout + read.stderr
        backing = api.agent.host.backend.volume_path(vol["id"])
        assert backing.read_bytes()[:MIB] == b"\xa5" * MIB

        wrong = qemu_io(tmp_path, data, "read 0 512", password="wrong-secret-0", initiator=me)
        assert wrong.returncode != 0 and "Authentication failure" in wrong.stderr
        stranger = qemu_io(tmp_path, data, "read 0 512", initiator=other)
        assert stranger.returncode != 0, stranger.stdout

        snap = await api.snapshot("p1", vol["id"], force=True)
        over = qemu_io(tmp_path, data, f"write -P 0x5a 0 {MIB}", "flush", initiator=me)
        assert pattern_ok(over), over.stderr
        assert pattern_ok(qemu_io(tmp_path, data, f"read -P 0x5a 0 {MIB}", initiator=me))

        copy = await api.volume("p1", size=1, snapshot_id=snap["id"])
        copy_data = await _attach(api, "p1", copy["id"], other, "s2")
        old = qemu_io(tmp_path, copy_data, f"read -P 0xa5 0 {MIB}", initiator=other)
        assert pattern_ok(old), old.stdout + old.stderr
        # Each export is open to its own initiator only.
        assert qemu_io(tmp_path, copy_data, "read 0 512", initiator=me).returncode != 0
        assert (await api.audit())["findings"] == []

        await _detach(api, "p1", vol["id"], me, "s1")
        await _detach(api, "p1", copy["id"], other, "s2")
        assert api.names.iqn_prefix not in tgtd.targets()
        gone = qemu_io(tmp_path, data, "read 0 512", initiator=me)
        assert gone.returncode != 0

        for path in (f"/snapshots/{snap['id']}",):
            assert (await api.delete("p1", path)).status_code == 202
        await api.wait_status("p1", "snapshots", snap["id"], "deleted")
        for vid in (vol["id"], copy["id"]):
            assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
            await api.wait_status("p1", "volumes", vid, "deleted")
        assert api.agent.host.backend.list_volumes() == frozenset()
        assert (await api.audit())["findings"] == []


async def test_tgtd_restart_and_agent_reconcile_bring_exports_back(
    tmp_path: Path, tgtd: Tgtd
) -> None:
    async with volume_api(tmp_path, agent=_tgt_agent(tgtd)) as api:
        me = api.names.initiator("c1")
        vol = await api.volume("p1", size=1)
        data = await _attach(api, "p1", vol["id"], me, "s1")
        assert pattern_ok(qemu_io(tmp_path, data, f"write -P 0x3c 0 {MIB}", initiator=me))

        tgtd.kill()
        tgtd.start()
        assert api.names.iqn_prefix not in tgtd.targets()
        findings = (await api.audit())["findings"]
        assert [(f["kind"], f["resource"], f["id"]) for f in findings] == [
            ("missing", "target", vol["id"])
        ]
        # A target the database does not know (left by a crash) is removed by reconcile.
        stray = api.agent.host.target
        from volume_svc.drivers.base import ExportSpec

        stray_file = tmp_path / "stray.img"
        stray_file.write_bytes(b"\0" * MIB)
        stray.export(ExportSpec("stray", stray_file, me, f"{api.names.prefix}stray", "x" * 16))

        await api.agent.stop()
        api.agent = build(api.agent.settings)
        await api.agent.start()
        # The start already ran one round; another one finds nothing left to change.
        await api.agent.reconciler.run_once()
        shown = tgtd.targets()
        assert "volume-stray" not in shown and f"volume-{vol['id']}" in shown
        assert await api.agent.reconciler.run_once() == {"exports": 1, "removed": 0}

        back = qemu_io(tmp_path, data, f"read -P 0x3c 0 {MIB}", initiator=me)
        assert pattern_ok(back), back.stdout + back.stderr
        assert (await api.audit())["findings"] == []

        await _detach(api, "p1", vol["id"], me, "s1")
        assert (await api.delete("p1", f"/volumes/{vol['id']}")).status_code == 202
        await api.wait_status("p1", "volumes", vol["id"], "deleted")
        assert api.names.iqn_prefix not in tgtd.targets()


def test_a_failed_tgtadm_hides_the_chap_secret(tgtd: Tgtd) -> None:
    """A tgtadm failure is the service's DriverError (and the chassis' CommandError), and
    its text shows ``--password ***``, never the secret, even where tgt echoes it."""
    tgt = TgtTarget(
        iqn_prefix="iqn.2010-10.org.stackling.hide", portal=tgtd.portal,
        control_port=tgtd.control_port,
    )  # fmt: skip
    user, secret = f"hide-{uuid.uuid4().hex[:8]}", f"S3cret-{uuid.uuid4().hex}"
    new = ("--mode", "account", "--op", "new", "--user", user, "--password", secret)
    tgt._adm(*new)
    try:
        with pytest.raises(DriverError) as failed:
            tgt._adm(*new)  # the account exists already
        assert isinstance(failed.value, commands.CommandError)
        text = str(failed.value)
        assert failed.value.code != 0 and secret not in text and secret not in failed.value.stderr
        assert f"--user {user} --password ***" in text
    finally:
        tgt._drop_account(user)
    assert user not in tgtd.account_names()
