"""VolumeHost: the backend and the target helper of this host, one operation at a time.

Driver calls block (file copies, tgtadm), so they run in a thread; a lock keeps an export
and a reconcile from interleaving on the same targets.

    host = VolumeHost(FileBackend(dir), load_target("tgt", config), name_prefix="")
    await host.create_volume("v1", 1)
    await host.export_volume("v1", "iqn.1993-08.org.debian:01:c1", "s3cr3t")
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..contracts import (
    BackupDeleted,
    BackupFile,
    Exported,
    HostState,
    ImageSource,
    ImageUploaded,
    Inventory,
    SnapshotDeleted,
    SnapshotFile,
    Unexported,
    UploadImage,
    VolumeDeleted,
    VolumeFile,
)
from ..drivers import images
from ..drivers.base import Backend, BackupStore, DriverError, ExportSpec, TargetHelper

T = TypeVar("T")
log = logging.getLogger(__name__)


class VolumeHost:
    def __init__(
        self,
        backend: Backend,
        target: TargetHelper,
        *,
        name_prefix: str = "",
        backups: BackupStore | None = None,
        download_timeout: float = 60.0,
    ) -> None:
        self.backend = backend
        self.target = target
        self.backups = backups
        # Of each read of an image download (a stalled image API fails the create).
        self.download_timeout = download_timeout
        self.name_prefix = name_prefix
        self._lock = asyncio.Lock()
        # When each volume was last exported or unexported: a reconcile that read the DB
        # before that must neither remove a fresh target nor bring back a removed one.
        self._touched_at: dict[str, float] = {}

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    def chap_user(self, volume_id: str) -> str:
        return f"{self.name_prefix}vol-{volume_id}"

    async def create_volume(
        self,
        volume_id: str,
        size_gb: int,
        snapshot_id: str | None = None,
        source_volume_id: str | None = None,
        image: ImageSource | None = None,
    ) -> VolumeFile:
        if image is not None:
            path = await self._run(self._from_image, volume_id, size_gb, image)
        elif snapshot_id is not None:
            source = self.backend.snapshot_path(snapshot_id)
            path = await self._run(self.backend.clone, volume_id, source, size_gb)
        elif source_volume_id is not None:
            source = self.backend.volume_path(source_volume_id)
            path = await self._run(self.backend.clone, volume_id, source, size_gb)
        else:
            path = await self._run(self.backend.create, volume_id, size_gb)
        return VolumeFile(volume_id=volume_id, path=str(path), size_gb=size_gb)

    def _from_image(self, volume_id: str, size_gb: int, image: ImageSource) -> Path:
        """Download the image beside the volume, convert it in; the download never stays."""
        scratch = self.backend.scratch_path(volume_id)
        try:
            images.download(
                image.url, image.identity, scratch, timeout=self.download_timeout,
                md5=image.checksum,
            )  # fmt: skip
            return self.backend.import_image(volume_id, scratch, image.disk_format, size_gb)
        finally:
            scratch.unlink(missing_ok=True)

    async def upload_image(self, request: UploadImage) -> ImageUploaded:
        """The volume's file, converted beside it when not raw, PUT to the image's file."""
        source = self.backend.volume_path(request.volume_id)
        if not source.exists():
            raise DriverError(f"volume {request.volume_id} has no file on this host")
        size = await self._run(
            lambda: images.upload(
                source, request.url, request.identity, request.disk_format,
                self.backend.scratch_path(request.volume_id), timeout=self.download_timeout,
            )
        )  # fmt: skip
        return ImageUploaded(volume_id=request.volume_id, size_bytes=size)

    async def delete_volume(self, volume_id: str) -> VolumeDeleted:
        """The export first (checked gone), then the file: no target outlives its data."""
        async with self._lock:
            await self._run(self.target.unexport, volume_id)
            self._touched_at[volume_id] = time.monotonic()
        await self._run(self.backend.delete, volume_id)
        return VolumeDeleted(volume_id=volume_id, deleted=True)

    async def extend_volume(self, volume_id: str, size_gb: int) -> VolumeFile:
        path = await self._run(self.backend.extend, volume_id, size_gb)
        return VolumeFile(volume_id=volume_id, path=str(path), size_gb=size_gb)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> SnapshotFile:
        path = await self._run(self.backend.snapshot, snapshot_id, volume_id)
        return SnapshotFile(snapshot_id=snapshot_id, path=str(path))

    async def delete_snapshot(self, snapshot_id: str) -> SnapshotDeleted:
        await self._run(self.backend.delete_snapshot, snapshot_id)
        return SnapshotDeleted(snapshot_id=snapshot_id, deleted=True)

    def _store(self) -> BackupStore:
        if self.backups is None:
            raise DriverError("this host has no backup store")
        return self.backups

    async def create_backup(
        self, backup_id: str, volume_id: str, snapshot_id: str | None = None
    ) -> BackupFile:
        """A copy of the snapshot's file, or of the volume's as it is now (an attached
        volume's is as consistent as a forced snapshot's: the same copy of the same file)."""
        store = self._store()
        if snapshot_id is not None:
            source = self.backend.snapshot_path(snapshot_id)
        else:
            source = self.backend.volume_path(volume_id)
        path = await self._run(store.backup, backup_id, source)
        return BackupFile(backup_id=backup_id, path=str(path), size_bytes=path.stat().st_size)

    async def restore_backup(self, backup_id: str, volume_id: str, size_gb: int) -> VolumeFile:
        store = self._store()
        dest = self.backend.volume_path(volume_id)
        await self._run(store.restore, backup_id, dest, size_gb)
        return VolumeFile(volume_id=volume_id, path=str(dest), size_gb=size_gb)

    async def delete_backup(self, backup_id: str) -> BackupDeleted:
        await self._run(self._store().delete, backup_id)
        return BackupDeleted(backup_id=backup_id, deleted=True)

    async def export_volume(self, volume_id: str, initiator: str, chap_secret: str) -> Exported:
        async with self._lock:
            return await self._export(volume_id, initiator, chap_secret)

    async def _export(self, volume_id: str, initiator: str, chap_secret: str) -> Exported:
        path = self.backend.volume_path(volume_id)
        if not path.exists():
            raise DriverError(f"volume {volume_id} has no file on this host")
        spec = ExportSpec(volume_id, path, initiator, self.chap_user(volume_id), chap_secret)
        export = await self._run(self.target.export, spec)
        self._touched_at[volume_id] = time.monotonic()
        return Exported(
            volume_id=volume_id,
            target_iqn=export.target_iqn,
            target_portal=export.portal,
            target_lun=export.lun,
            auth_username=export.chap_user,
        )

    async def unexport_volume(self, volume_id: str) -> Unexported:
        async with self._lock:
            await self._run(self.target.unexport, volume_id)
            self._touched_at[volume_id] = time.monotonic()
        return Unexported(volume_id=volume_id, unexported=True)

    async def inventory(self) -> Inventory:
        exports = await self._run(self.target.list_exports)
        return Inventory(
            volumes=sorted(await self._run(self.backend.list_volumes)),
            snapshots=sorted(await self._run(self.backend.list_snapshots)),
            backups=sorted(await self._run(self.backups.list_backups)) if self.backups else [],
            partial_backups=(
                sorted(await self._run(self.backups.list_partial)) if self.backups else []
            ),
            exports={vid: list(e.initiators) for vid, e in sorted(exports.items())},
            target_helper=self.target.name,
        )

    async def converge(self, state: HostState, since: float) -> dict[str, int]:
        """Make the targets match ``state`` (``host_state``, read at ``since``).

        Expected exports are (re)made, identical ones are left alone; our targets the DB
        does not expect are removed. A volume exported or unexported after the state was
        read is left as that newer command made it. Files are never removed here: an
        unexplained file is the audit's to report.
        """
        wanted = {e.volume_id: e for e in state.exports}
        made = removed = 0
        async with self._lock:
            for vid, item in sorted(wanted.items()):
                if self._touched_at.get(vid, 0.0) >= since:
                    continue
                try:
                    await self._export(vid, item.initiator, item.chap_secret)
                    made += 1
                except DriverError as exc:
                    log.error("re-exporting volume %s failed: %s", vid, exc)
            present = await self._run(self.target.list_exports)
            for vid in sorted(set(present) - set(wanted)):
                if self._touched_at.get(vid, 0.0) >= since:
                    continue
                await self._run(self.target.unexport, vid)
                self._touched_at[vid] = time.monotonic()
                removed += 1
        return {"exports": made, "removed": removed}
