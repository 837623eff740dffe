"""A backup through real iSCSI: QEMU's initiator writes a pattern to a tgt export, the
attached volume is backed up (force), written over, and the pattern is read back through
the export of the restored volume, new and existing.

Each test runs its own tgtd (iscsi_fixtures.tgtd) and the real volume-agent with the file
backend and file backup store; names carry the test's prefix and are removed afterwards.
"""

from __future__ import annotations

from pathlib import Path

from iscsi_fixtures import Tgtd, needs_tgt, pattern_ok, qemu_io, tgtd_fixture  # noqa: F401
from test_volume_iscsi import _attach, _detach, _tgt_agent
from volapi_helpers import volume_api

MIB = 1 << 20
pytestmark = needs_tgt


async def test_a_restored_backup_holds_the_pattern_written_before_it(
    tmp_path: Path, tgtd: Tgtd
) -> None:
    async with volume_api(tmp_path, agent=_tgt_agent(tgtd)) as api:
        me, other = api.names.initiator("c1"), api.names.initiator("c2")
        vol = await api.volume("p1", size=1)
        data = await _attach(api, "p1", vol["id"], me, "s1")
        wrote = qemu_io(tmp_path, data, f"write -P 0xa5 0 {MIB}", "flush", initiator=me)
        assert pattern_ok(wrote), wrote.stdout + wrote.stderr

        resp = await api.post("p1", "/backups", {"backup": {"volume_id": vol["id"], "force": True}})
        assert resp.status_code == 202, resp.text
        bid = resp.json()["backup"]["id"]
        await api.wait_status("p1", "backups", bid, "available")
        over = qemu_io(tmp_path, data, f"write -P 0x5a 0 {MIB}", "flush", initiator=me)
        assert pattern_ok(over), over.stderr

        resp = await api.post("p1", f"/backups/{bid}/restore", {"restore": {"name": "r"}})
        assert resp.status_code == 202, resp.text
        new_id = resp.json()["restore"]["volume_id"]
        await api.wait_status("p1", "volumes", new_id, "available")
        new_data = await _attach(api, "p1", new_id, other, "s2")
        old = qemu_io(tmp_path, new_data, f"read -P 0xa5 0 {MIB}", initiator=other)
        assert pattern_ok(old), old.stdout + old.stderr
        # The attached original still holds what was written after the backup.
        assert pattern_ok(qemu_io(tmp_path, data, f"read -P 0x5a 0 {MIB}", initiator=me))

        # Restored over the original once it is detached: its export shows the old bytes.
        await _detach(api, "p1", vol["id"], me, "s1")
        restore = {"restore": {"volume_id": vol["id"]}}
        resp = await api.post("p1", f"/backups/{bid}/restore", restore)
        assert resp.status_code == 202, resp.text
        await api.wait_status("p1", "volumes", vol["id"], "available")
        data = await _attach(api, "p1", vol["id"], me, "s1")
        back = qemu_io(tmp_path, data, f"read -P 0xa5 0 {MIB}", initiator=me)
        assert pattern_ok(back), back.stdout + back.stderr
        assert (await api.audit())["findings"] == []

        await _detach(api, "p1", vol["id"], me, "s1")
        await _detach(api, "p1", new_id, other, "s2")
        assert api.names.iqn_prefix not in tgtd.targets()
        assert (await api.delete("p1", f"/backups/{bid}")).status_code == 202
        await api.wait_status("p1", "backups", bid, "deleted")
        for vid in (vol["id"], new_id):
            assert (await api.delete("p1", f"/volumes/{vid}")).status_code == 202
            await api.wait_status("p1", "volumes", vid, "deleted")
        assert api.agent is not None and api.agent.host.backups is not None
        assert api.agent.host.backend.list_volumes() == frozenset()
        assert api.agent.host.backups.list_backups() == frozenset()
        assert (await api.audit())["findings"] == []
