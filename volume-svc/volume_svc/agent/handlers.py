"""The commands on ``volume.<host>`` (``contracts.AGENT``), served by that host's volume-agent.

The API calls them through ``volume_svc.clients.AgentApi``; ``deps`` is the host's
``VolumeHost``. Driver failures cross as ``InternalError`` with a generic message
(details stay in the agent's log) and the API moves the row to its error status.
"""

from __future__ import annotations

from common_rpc import RpcRouter
from common_rpc.contracts.volume import VolumeRef
from common_rpc.methods import Empty

from ..contracts import (
    CREATE_BACKUP,
    CREATE_SNAPSHOT,
    CREATE_VOLUME,
    DELETE_BACKUP,
    DELETE_SNAPSHOT,
    DELETE_VOLUME,
    EXPORT_VOLUME,
    EXTEND_VOLUME,
    INVENTORY,
    RESTORE_BACKUP,
    UNEXPORT_VOLUME,
    UPLOAD_IMAGE,
    BackupDeleted,
    BackupFile,
    BackupRef,
    CreateBackup,
    CreateSnapshot,
    CreateVolume,
    Exported,
    ExportVolume,
    ExtendVolume,
    ImageUploaded,
    Inventory,
    RestoreBackup,
    SnapshotDeleted,
    SnapshotFile,
    SnapshotRef,
    Unexported,
    UploadImage,
    VolumeDeleted,
    VolumeFile,
)
from .host import VolumeHost

rpc = RpcRouter()


@rpc.implement(CREATE_VOLUME)
async def create_volume(host: VolumeHost, request: CreateVolume) -> VolumeFile:
    return await host.create_volume(
        request.volume_id,
        request.size_gb,
        request.snapshot_id,
        request.source_volume_id,
        request.image,
    )


@rpc.implement(DELETE_VOLUME)
async def delete_volume(host: VolumeHost, request: VolumeRef) -> VolumeDeleted:
    return await host.delete_volume(request.volume_id)


@rpc.implement(EXTEND_VOLUME)
async def extend_volume(host: VolumeHost, request: ExtendVolume) -> VolumeFile:
    return await host.extend_volume(request.volume_id, request.size_gb)


@rpc.implement(CREATE_SNAPSHOT)
async def create_snapshot(host: VolumeHost, request: CreateSnapshot) -> SnapshotFile:
    return await host.create_snapshot(request.snapshot_id, request.volume_id)


@rpc.implement(DELETE_SNAPSHOT)
async def delete_snapshot(host: VolumeHost, request: SnapshotRef) -> SnapshotDeleted:
    return await host.delete_snapshot(request.snapshot_id)


@rpc.implement(EXPORT_VOLUME)
async def export_volume(host: VolumeHost, request: ExportVolume) -> Exported:
    return await host.export_volume(request.volume_id, request.initiator, request.chap_secret)


@rpc.implement(UNEXPORT_VOLUME)
async def unexport_volume(host: VolumeHost, request: VolumeRef) -> Unexported:
    return await host.unexport_volume(request.volume_id)


@rpc.implement(INVENTORY)
async def inventory(host: VolumeHost, request: Empty) -> Inventory:
    return await host.inventory()


@rpc.implement(CREATE_BACKUP)
async def create_backup(host: VolumeHost, request: CreateBackup) -> BackupFile:
    return await host.create_backup(request.backup_id, request.volume_id, request.snapshot_id)


@rpc.implement(RESTORE_BACKUP)
async def restore_backup(host: VolumeHost, request: RestoreBackup) -> VolumeFile:
    return await host.restore_backup(request.backup_id, request.volume_id, request.size_gb)


@rpc.implement(DELETE_BACKUP)
async def delete_backup(host: VolumeHost, request: BackupRef) -> BackupDeleted:
    return await host.delete_backup(request.backup_id)


@rpc.implement(UPLOAD_IMAGE)
async def upload_image(host: VolumeHost, request: UploadImage) -> ImageUploaded:
    return await host.upload_image(request)
