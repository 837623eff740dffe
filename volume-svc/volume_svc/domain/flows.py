"""The data-plane half of each change: call the volume's agent, then settle the row.

The API commits the row in its transitional status (``creating``, ``deleting``,
``extending``) and answers 202; these flows run after it. Success moves the row on and
writes the ``.end`` event in one transaction; failure moves it to the matching error
status and releases what it took. A process that dies mid-flow leaves the row past its
deadline: the sweeper moves it to the error status.
"""

from __future__ import annotations

import logging

from common_rpc.chassis.sweeper import transition
from common_rpc.context import RequestContext
from common_rpc.errors import RpcError

from .. import events
from ..contracts import ImageSource
from ..db.models import Backup, Snapshot, Volume, utcnow
from ..wiring import Deps
from . import backups, images, quotas, snapshots, states, volumes
from .common import transaction

log = logging.getLogger(__name__)


async def finish_create(
    deps: Deps, ctx: RequestContext, volume_id: str, identity: str | None = None
) -> None:
    """The agent makes the file (empty, a copy, or an image's bytes read as the caller
    with ``identity``); a volume made from an image is bootable."""
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host, size = vol.host, vol.size
        snapshot_id, source_id = vol.snapshot_id, vol.source_volid
        image = _image_source(deps, vol, identity)
    try:
        await deps.agent(host).create_volume(
            volume_id, size, snapshot_id=snapshot_id, source_volume_id=source_id, image=image
        )
        status = "available"
    except RpcError as exc:
        log.warning("creating volume %s on %s failed: %s", volume_id, host, exc)
        status = "error"
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        bootable = {"bootable": True} if image is not None and status == "available" else {}
        await states.move(session, vol, "create_done", to=status, **bootable)
        if status == "available":
            await volumes.emit(session, ctx, vol, events.CREATE)


def _image_source(deps: Deps, vol: Volume, identity: str | None) -> ImageSource | None:
    if vol.image_id is None:
        return None
    meta = vol.image_metadata or {}
    return ImageSource(
        image_id=vol.image_id,
        url=deps.images.file_url(vol.image_id),
        # No identity (a process restarted mid-create cannot have one): the download
        # is refused and the volume ends in error, as it must.
        identity=identity or "",
        disk_format=meta.get("disk_format", "raw"),
        checksum=meta.get("checksum"),
        size_bytes=int(meta["size"]) if meta.get("size") else None,
    )


async def finish_delete(deps: Deps, ctx: RequestContext, volume_id: str) -> None:
    """The agent removes the export (checking it is gone) and the file; then the row goes."""
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host = vol.host
    try:
        await deps.agent(host).delete_volume(volume_id)
    except RpcError as exc:
        log.warning("deleting volume %s on %s failed: %s", volume_id, host, exc)
        async with transaction(deps.sessions) as session:
            vol = await session.get(Volume, volume_id)
            if vol is not None:
                await states.move(session, vol, "delete_failed", to="error_deleting")
        return
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        vol.status = "deleted"
        await volumes.emit(session, ctx, vol, events.DELETE)
        await quotas.release(session, vol.project_id, {"volumes": 1, "gigabytes": vol.size})
        await session.delete(vol)


async def finish_extend(deps: Deps, ctx: RequestContext, volume_id: str, new_size: int) -> None:
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host, old = vol.host, vol.size
    try:
        await deps.agent(host).extend_volume(volume_id, new_size)
        ok = True
    except RpcError as exc:
        log.warning("extending volume %s on %s failed: %s", volume_id, host, exc)
        ok = False
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        if ok:
            await states.move(session, vol, "extend_done", to="available", size=new_size)
            await volumes.emit(session, ctx, vol, events.EXTEND)
        else:
            await states.move(session, vol, "extend_done", to="error_extending")
            await quotas.release(session, vol.project_id, {"gigabytes": new_size - old})


async def finish_snapshot(deps: Deps, ctx: RequestContext, snapshot_id: str) -> None:
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        host, volume_id = snap.host, snap.volume_id
    try:
        await deps.agent(host).create_snapshot(snapshot_id, volume_id)
        status = "available"
    except RpcError as exc:
        log.warning("snapshot %s of %s failed: %s", snapshot_id, volume_id, exc)
        status = "error"
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        await states.move(session, snap, "create_done", to=status)
        if status == "available":
            await snapshots.emit(session, ctx, snap, events.CREATE)


async def finish_snapshot_delete(deps: Deps, ctx: RequestContext, snapshot_id: str) -> None:
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        host = snap.host
    try:
        await deps.agent(host).delete_snapshot(snapshot_id)
    except RpcError as exc:
        log.warning("deleting snapshot %s failed: %s", snapshot_id, exc)
        async with transaction(deps.sessions) as session:
            snap = await session.get(Snapshot, snapshot_id)
            if snap is not None:
                await states.move(session, snap, "delete_failed", to="error_deleting")
        return
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        snap.status = "deleted"
        await snapshots.emit(session, ctx, snap, events.DELETE)
        await quotas.release(session, snap.project_id, {"snapshots": 1, "gigabytes": snap.size})
        await session.delete(snap)


async def finish_backup(deps: Deps, ctx: RequestContext, backup_id: str) -> None:
    """The agent copies the volume (or its snapshot) into the store; the backup becomes
    ``available`` or ``error`` (its quota is held until it is deleted), and a volume held
    ``backing-up`` is ``available`` again either way."""
    async with transaction(deps.sessions) as session:
        backup = await session.get(Backup, backup_id)
        if backup is None:
            return
        host, volume_id, snapshot_id = backup.host, backup.volume_id, backup.snapshot_id
    fail_reason = None
    try:
        await deps.agent(host).create_backup(backup_id, volume_id, snapshot_id)
    except RpcError as exc:
        log.warning("backup %s of volume %s failed: %s", backup_id, volume_id, exc)
        fail_reason = str(exc)[:255] or "the copy failed"
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is not None and vol.task_owner == backups.holder(backup_id):
            await transition(session, Volume, volume_id, expected="backing-up", to="available")
        backup = await session.get(Backup, backup_id)
        if backup is None:
            return
        status = "available" if fail_reason is None else "error"
        won = await transition(
            session, Backup, backup_id, expected="creating", to=status,
            fail_reason=fail_reason, updated_at=utcnow(),
        )  # fmt: skip
        if won and fail_reason is None:
            await session.refresh(backup)
            await backups.emit(session, ctx, backup, events.CREATE)


async def finish_backup_delete(deps: Deps, ctx: RequestContext, backup_id: str) -> None:
    async with transaction(deps.sessions) as session:
        backup = await session.get(Backup, backup_id)
        if backup is None:
            return
        host = backup.host
    try:
        await deps.agent(host).delete_backup(backup_id)
    except RpcError as exc:
        log.warning("deleting backup %s failed: %s", backup_id, exc)
        async with transaction(deps.sessions) as session:
            await transition(session, Backup, backup_id, expected="deleting", to="error_deleting")
        return
    async with transaction(deps.sessions) as session:
        backup = await session.get(Backup, backup_id)
        if backup is None:
            return
        backup.status = "deleted"
        await backups.emit(session, ctx, backup, events.DELETE)
        await quotas.release(
            session, backup.project_id, {"backups": 1, "backup_gigabytes": backup.size}
        )
        await session.delete(backup)


async def finish_restore(
    deps: Deps, ctx: RequestContext, backup_id: str, volume_id: str, new: bool
) -> None:
    """The agent replaces the volume's file with the backup's bytes. Success: both are
    ``available``; failure: the backup is ``available`` again and the volume ``error``
    (made for the restore) or ``error_restoring`` (its old data may be gone)."""
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host, size = vol.host, vol.size
    try:
        await deps.agent(host).restore_backup(backup_id, volume_id, size)
        ok = True
    except RpcError as exc:
        log.warning("restoring backup %s to %s failed: %s", backup_id, volume_id, exc)
        ok = False
    async with transaction(deps.sessions) as session:
        failed = "error" if new else "error_restoring"
        moved = await transition(
            session, Volume, volume_id, expected="restoring-backup",
            to="available" if ok else failed, updated_at=utcnow(),
        )  # fmt: skip
        await transition(
            session, Backup, backup_id, expected="restoring", to="available", updated_at=utcnow()
        )
        vol = await session.get(Volume, volume_id)
        backup = await session.get(Backup, backup_id)
        if not (ok and moved) or vol is None:
            return
        await session.refresh(vol)
        await volumes.emit(session, ctx, vol, events.CREATE if new else events.UPDATE)
        if backup is not None:
            await session.refresh(backup)
            await backups.emit(session, ctx, backup, events.RESTORE)


async def finish_upload(
    deps: Deps,
    ctx: RequestContext,
    volume_id: str,
    image_id: str,
    identity: str,
    disk_format: str,
) -> None:
    """The agent PUTs the volume's bytes to the image's file as the caller; a failed copy
    deletes the image again (as the caller). A volume held ``uploading`` by this image is
    ``available`` again either way."""
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host = vol.host
    try:
        await deps.agent(host).upload_image(
            volume_id, deps.images.file_url(image_id), identity, disk_format
        )
        ok = True
    except RpcError as exc:
        log.warning("uploading volume %s to image %s failed: %s", volume_id, image_id, exc)
        ok = False
    if not ok:
        try:
            await deps.images.delete(image_id, identity)
        except RpcError as exc:
            log.warning("the image %s of a failed upload stays: %s", image_id, exc)
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None or vol.task_owner != images.upload_holder(image_id):
            return
        if await transition(
            session, Volume, volume_id, expected="uploading", to="available", updated_at=utcnow()
        ):
            await session.refresh(vol)
            await volumes.emit(session, ctx, vol, events.UPDATE)
