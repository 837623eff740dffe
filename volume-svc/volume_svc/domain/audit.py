"""The volume audit: does every backend host hold exactly what the database says?

Findings: a file, backup copy or target on a host that no row explains (``orphan``), a
volume whose file or expected export is absent or an available backup without its copy
(``missing``), a target open to an initiator other
than the recorded one (``mismatch``), a row past its task deadline (``stuck``), and a
host that did not answer (``unreachable``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from common_rpc.audit import AuditReport
from common_rpc.errors import RpcError

from ..contracts import Inventory
from ..db.models import Backup, Snapshot, Volume, VolumeExport
from ..wiring import Deps
from .common import transaction

# Statuses in which a backup's copy must be complete in its host's store.
BACKUP_HAS_FILE = ("available", "restoring")
# Statuses in which a volume's file must exist on its host.
HAS_FILE = (
    "available", "reserved", "attaching", "in-use", "detaching", "extending",
    "awaiting-transfer", "backing-up", "uploading",
)  # fmt: skip


async def run(deps: Deps) -> AuditReport:
    report = AuditReport(service="volume")
    now = datetime.now(UTC)
    async with transaction(deps.sessions) as session:
        vols = list(await session.scalars(select(Volume)))
        snaps = list(await session.scalars(select(Snapshot)))
        backs = list(await session.scalars(select(Backup)))
        rows = list(await session.scalars(select(VolumeExport)))
    # An export being removed is expected to be gone: its target, if any, is an orphan.
    exports = {e.volume_id: e for e in rows if not e.removing}
    for row in [*vols, *snaps, *backs]:
        if row.task_deadline is not None and row.task_deadline < now:
            kind = type(row).__name__.lower()
            report.add("stuck", kind, row.id, host=row.host, detail=f"{row.status} past deadline")
    hosts = sorted({v.host for v in vols} | {b.host for b in backs} | {deps.settings.volume_host()})
    for host in hosts:
        try:
            inv = await deps.agent(host).inventory()
        except RpcError as exc:
            if any(v.host == host for v in [*vols, *backs]):
                report.add("unreachable", "host", host, host=host, detail=str(exc))
            continue
        _compare(report, host, inv, vols, snaps, exports)
        _compare_backups(report, host, inv, backs)
    report.count("volumes", len(vols))
    report.count("backups", len(backs))
    report.count("snapshots", len(snaps))
    report.count("exports", len(exports))
    return report


def _compare(
    report: AuditReport,
    host: str,
    inv: Inventory,
    vols: list[Volume],
    snaps: list[Snapshot],
    exports: dict[str, VolumeExport],
) -> None:
    here = {v.id: v for v in vols if v.host == host}
    files, snap_files = set(inv.volumes), set(inv.snapshots)
    targets = inv.exports
    for vid in sorted(files - set(here)):
        report.add("orphan", "volume_file", vid, host=host, detail="file without a volume row")
    known_snaps = {s.id for s in snaps if s.host == host}
    for sid in sorted(snap_files - known_snaps):
        report.add("orphan", "snapshot_file", sid, host=host, detail="file without a snapshot")
    for vid, vol in here.items():
        if vol.status in HAS_FILE and vid not in files:
            report.add("missing", "volume_file", vid, host=host, detail=f"status {vol.status}")
    for sid in sorted(known_snaps - snap_files):
        status = next(s.status for s in snaps if s.id == sid)
        if status == "available":
            report.add("missing", "snapshot_file", sid, host=host)
    for vid, initiators in sorted(targets.items()):
        if vid not in exports or vid not in here:
            report.add("orphan", "target", vid, host=host, detail="export the DB does not expect")
        elif list(initiators) != [exports[vid].initiator]:
            report.add("mismatch", "target", vid, host=host, detail=f"open to {initiators}")
    for vid in sorted(set(exports) & set(here)):
        if vid not in targets:
            report.add("missing", "target", vid, host=host, detail="expected export is absent")
    report.count("targets", len(targets))
    report.count("files", len(files) + len(snap_files))


def _compare_backups(report: AuditReport, host: str, inv: Inventory, backs: list[Backup]) -> None:
    """Backup copies against the backup rows: an unexplained copy or a copy cut short with
    no backup being made is an orphan; an available backup without its copy is missing."""
    here = {b.id: b for b in backs if b.host == host}
    files = set(inv.backups)
    for bid in sorted(files - set(here)):
        report.add("orphan", "backup_file", bid, host=host, detail="file without a backup row")
    for bid in sorted(set(inv.partial_backups)):
        if bid not in here or here[bid].status != "creating":
            report.add("orphan", "backup_part", bid, host=host, detail="copy cut short")
    for bid, backup in sorted(here.items()):
        if backup.status in BACKUP_HAS_FILE and bid not in files:
            report.add("missing", "backup_file", bid, host=host, detail=f"status {backup.status}")
    report.count("backup_files", len(files))
