"""The compute group of ``stackling doctor``: libvirt, QEMU, qemu-img; KVM only a warning."""

from __future__ import annotations

from pathlib import Path

from common_rpc.cli.probe import Status
from compute_svc.checks import CHECKS, check_kvm


def test_kvm_absent_is_only_a_warning(tmp_path: Path) -> None:
    result = check_kvm(device=tmp_path / "kvm", path=str(tmp_path))
    assert result.status is Status.WARN and "TCG unavailable" in result.detail


def test_this_host_runs_guests() -> None:
    results = [check() for check in CHECKS]
    missing = {r.name: r.detail for r in results if r.status is Status.MISSING}
    assert missing == {}
