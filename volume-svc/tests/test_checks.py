"""The volume group of ``stackling doctor``: an iSCSI target helper, LIO or tgt."""

from __future__ import annotations

from pathlib import Path

from common_rpc.cli.probe import Status
from volume_svc.checks import check_iscsi_target


def test_iscsi_target_accepts_lio_or_tgt(tmp_path: Path) -> None:
    assert check_iscsi_target(path=str(tmp_path), lio_dir=tmp_path / "no").status is Status.MISSING
    assert check_iscsi_target(path=str(tmp_path), lio_dir=tmp_path).detail.startswith("LIO")


def test_this_host_has_tgt() -> None:
    assert check_iscsi_target().status is Status.OK
