"""Backups as whole sparse copies of volume files in one backup directory.

The directory is the agent's setting (``VOLUME_AGENT_BACKUP_DIR``), apart from the
volumes' so an operator can put it on other disks. A copy is written under a ``.part``
name and renamed when complete; ``delete`` removes a leftover ``.part`` too, so a copy
cut short by a killed agent is gone once its backup is deleted.

    store = FileBackupStore(Path("/var/lib/stackling/backups"), prefix="t1-")
    store.backup("b1", backend.volume_path("v1"))         # .../t1-backup-b1.img
    store.restore("b1", backend.volume_path("v2"), 2)     # v2 holds b1's bytes, 2 GiB
"""

from __future__ import annotations

from pathlib import Path

from .base import DriverConfig, DriverError
from .filebackend import GIB, copy_sparse, partial


class FileBackupStore:
    name = "file"

    def __init__(self, backup_dir: Path, *, prefix: str = "") -> None:
        self.backup_dir = backup_dir
        self.prefix = prefix
        backup_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(cls, config: DriverConfig) -> FileBackupStore:
        directory = config.backup_dir or config.storage_dir.parent / "backups"
        return cls(directory, prefix=config.name_prefix)

    def backup_path(self, backup_id: str) -> Path:
        return self.backup_dir / f"{self.prefix}backup-{backup_id}.img"

    def backup(self, backup_id: str, source: Path) -> Path:
        if not source.exists():
            raise DriverError(f"volume file {source.name} does not exist")
        path = self.backup_path(backup_id)
        copy_sparse(source, path)
        return path

    def restore(self, backup_id: str, dest: Path, size_gb: int) -> Path:
        """``dest`` holds the backup's bytes, grown to ``size_gb``; replaced whole."""
        path = self.backup_path(backup_id)
        if not path.exists():
            raise DriverError(f"backup file {path.name} does not exist")
        if path.stat().st_size > size_gb * GIB:
            raise DriverError(f"backup {backup_id} does not fit in {size_gb} GiB")
        copy_sparse(path, dest, size_gb * GIB)
        return dest

    def delete(self, backup_id: str) -> None:
        path = self.backup_path(backup_id)
        path.unlink(missing_ok=True)
        partial(path).unlink(missing_ok=True)

    def _ids(self, tail: str) -> frozenset[str]:
        head = f"{self.prefix}backup-"
        return frozenset(
            p.name[len(head) : -len(tail)]
            for p in self.backup_dir.glob(f"{head}*{tail}")
            if p.is_file()
        )

    def list_backups(self) -> frozenset[str]:
        return self._ids(".img")

    def list_partial(self) -> frozenset[str]:
        """Copies cut short (a killed agent): the audit reports those no backup explains."""
        return self._ids(".img.part")
