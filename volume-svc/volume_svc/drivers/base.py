"""What volume-agent drives: a backend that holds the bytes, a target that exports them.

Every call is idempotent, so the agent may repeat it after a crash or a lost reply.

    path = backend.create("v1", size_gb=1)
    export = target.export(ExportSpec("v1", path, "iqn.1993-08.org.debian:01:abc",
                                      chap_user="u", chap_secret="s"))
    export.target_iqn, export.portal, export.lun
    target.unexport("v1"); assert "v1" not in target.list_exports()

Drivers are plugins: an entry point of group ``stackling.volume.drivers`` named
``backend.<name>``, ``target.<name>`` or ``backup.<name>`` names a ``BackendDriver``,
``TargetDriver`` or ``BackupDriver`` (a class with ``from_config``), the built-in ones in
volume-svc's pyproject as a third party's would be, and the agent's settings choose them
(``VOLUME_DRIVERS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from common_rpc.chassis import commands


class DriverError(RuntimeError):
    """A host operation failed; the message names the operation and the object."""


class CommandError(commands.CommandError, DriverError):
    """A host command failed (``commands.run(..., error=CommandError)``): a DriverError to
    the agent, its text with every secret (a CHAP password after ``--password``) hidden."""


@dataclass(frozen=True)
class ExportSpec:
    volume_id: str
    path: Path
    initiator: str
    chap_user: str
    chap_secret: str


@dataclass(frozen=True)
class Export:
    volume_id: str
    target_iqn: str
    portal: str
    lun: int
    initiators: tuple[str, ...] = ()
    chap_user: str = ""


@dataclass(frozen=True)
class DriverConfig:
    """What the agent's settings tell every driver; each takes what it needs."""

    storage_dir: Path
    iqn_prefix: str
    # The portal compute hosts reach the targets at (``host:port``).
    portal: str
    # Prefix of file and CHAP account names ("" in production).
    name_prefix: str = ""
    # tgtd's management port (tgtadm -C); 0 is the default daemon.
    tgt_control_port: int = 0
    # LIO's configfs directory: where it exists, ``auto`` picks LIO.
    lio_dir: Path = Path("/sys/kernel/config/target")
    # Where backups are kept on this host (a backup driver's store); None: beside the
    # volumes, in ``<storage_dir>/../backups``.
    backup_dir: Path | None = None


class Backend(Protocol):
    def create(self, volume_id: str, size_gb: int) -> Path: ...
    def clone(self, volume_id: str, source: Path, size_gb: int) -> Path: ...
    def extend(self, volume_id: str, size_gb: int) -> Path: ...
    def scratch_path(self, volume_id: str) -> Path: ...
    def import_image(
        self, volume_id: str, source: Path, disk_format: str, size_gb: int
    ) -> Path: ...
    def delete(self, volume_id: str) -> None: ...
    def snapshot(self, snapshot_id: str, volume_id: str) -> Path: ...
    def delete_snapshot(self, snapshot_id: str) -> None: ...
    def volume_path(self, volume_id: str) -> Path: ...
    def snapshot_path(self, snapshot_id: str) -> Path: ...
    def list_volumes(self) -> frozenset[str]: ...
    def list_snapshots(self) -> frozenset[str]: ...


class TargetHelper(Protocol):
    """One iSCSI target per exported volume, open to one initiator, behind CHAP."""

    name: str
    iqn_prefix: str
    portal: str

    def target_iqn(self, volume_id: str) -> str: ...
    def export(self, spec: ExportSpec) -> Export: ...
    def unexport(self, volume_id: str) -> None: ...
    def list_exports(self) -> dict[str, Export]: ...


class BackupStore(Protocol):
    """Whole copies of volume files kept apart from the volumes (Cinder's backup driver).

    ``backup`` and ``restore`` write to a temporary name and rename it into place, so a
    failed or interrupted copy leaves no half backup and no half-restored volume.
    """

    name: str

    def backup(self, backup_id: str, source: Path) -> Path: ...
    def restore(self, backup_id: str, dest: Path, size_gb: int) -> Path: ...
    def delete(self, backup_id: str) -> None: ...
    def backup_path(self, backup_id: str) -> Path: ...
    def list_backups(self) -> frozenset[str]: ...
    def list_partial(self) -> frozenset[str]: ...


class BackendDriver(Protocol):
    """What a ``backend.<name>`` entry point names."""

    def from_config(self, config: DriverConfig) -> Backend: ...


class TargetDriver(Protocol):
    """What a ``target.<name>`` entry point names."""

    def from_config(self, config: DriverConfig) -> TargetHelper: ...


class BackupDriver(Protocol):
    """What a ``backup.<name>`` entry point names."""

    def from_config(self, config: DriverConfig) -> BackupStore: ...
