"""Host checks for the volume agent: an iSCSI target, tgt (userspace) or LIO (kernel).

>>> check_iscsi_target(path="/nonexistent", lio_dir=Path("/nonexistent")).status
<Status.MISSING: 'MISSING'>
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from common_rpc.cli.probe import CheckResult, Status, find

GROUP = "volume"
LIO_DIR = Path("/sys/kernel/config/target")


def check_iscsi_target(path: str | None = None, lio_dir: Path = LIO_DIR) -> CheckResult:
    """OK when tgt (tgtadm and tgtd) is installed or LIO's configfs directory exists."""
    found: list[str] = []
    tgtadm, tgtd = find("tgtadm", path), find("tgtd", path)
    if tgtadm and tgtd:
        found.append(f"tgt ({tgtadm}, {tgtd})")
    if lio_dir.is_dir():
        found.append(f"LIO ({lio_dir})")
    if found:
        return CheckResult("iscsi-target", GROUP, Status.OK, " and ".join(found))
    return CheckResult(
        "iscsi-target",
        GROUP,
        Status.MISSING,
        f"no tgtadm/tgtd in PATH and no {lio_dir}",
        "apt-get install tgt (or, for LIO: modprobe target_core_mod and mount configfs)",
    )


# What `stackling doctor` runs for the volume group (entry point `stackling.doctor`).
CHECKS: list[Callable[[], CheckResult]] = [check_iscsi_target]
