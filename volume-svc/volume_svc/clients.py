"""Typed clients of what volume-api calls: the volume-agent of one host (``volume.<host>``).

    agent = AgentApi(runtime.rpc, "st1", timeout=30)
    await agent.create_volume("v1", size_gb=1)                       # VolumeFile
    export = await agent.export_volume("v1", initiator=iqn, chap_secret=secret)
    export.target_iqn, export.target_portal, export.target_lun, export.auth_username

Every call has a deadline (a data copy the longer one); a host that is down raises
``RpcTimeout``.
"""

from __future__ import annotations

from typing import TypeVar

from common_rpc.chassis.agent import agent_topic
from common_rpc.contracts.volume import VolumeRef
from common_rpc.methods import Empty, Message, Method
from common_rpc.rpc import RpcClient

from .contracts import (
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
    BackupDeleted,
    BackupFile,
    BackupRef,
    CreateBackup,
    CreateSnapshot,
    CreateVolume,
    Exported,
    ExportVolume,
    ExtendVolume,
    Inventory,
    RestoreBackup,
    SnapshotDeleted,
    SnapshotFile,
    SnapshotRef,
    Unexported,
    VolumeDeleted,
    VolumeFile,
)

Req = TypeVar("Req", bound=Message)
Rep = TypeVar("Rep", bound=Message)


class AgentApi:
    def __init__(
        self, rpc: RpcClient, host: str, *, timeout: float = 30.0, copy_timeout: float = 600.0
    ) -> None:
        self.rpc = rpc
        self.host = host
        self.topic = agent_topic("volume", host)
        self.timeout = timeout
        self.copy_timeout = copy_timeout

    async def _invoke(
        self, method: Method[Req, Rep], request: Req, timeout: float | None = None
    ) -> Rep:
        return await self.rpc.invoke(self.topic, method, request, timeout=timeout or self.timeout)

    async def create_volume(
        self,
        volume_id: str,
        size_gb: int,
        snapshot_id: str | None = None,
        source_volume_id: str | None = None,
    ) -> VolumeFile:
        copying = snapshot_id is not None or source_volume_id is not None
        request = CreateVolume(
            volume_id=volume_id,
            size_gb=size_gb,
            snapshot_id=snapshot_id,
            source_volume_id=source_volume_id,
        )
        return await self._invoke(CREATE_VOLUME, request, self.copy_timeout if copying else None)

    async def delete_volume(self, volume_id: str) -> VolumeDeleted:
        return await self._invoke(DELETE_VOLUME, VolumeRef(volume_id=volume_id))

    async def extend_volume(self, volume_id: str, size_gb: int) -> VolumeFile:
        return await self._invoke(EXTEND_VOLUME, ExtendVolume(volume_id=volume_id, size_gb=size_gb))

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> SnapshotFile:
        request = CreateSnapshot(snapshot_id=snapshot_id, volume_id=volume_id)
        return await self._invoke(CREATE_SNAPSHOT, request, self.copy_timeout)

    async def delete_snapshot(self, snapshot_id: str) -> SnapshotDeleted:
        return await self._invoke(DELETE_SNAPSHOT, SnapshotRef(snapshot_id=snapshot_id))

    async def export_volume(self, volume_id: str, initiator: str, chap_secret: str) -> Exported:
        request = ExportVolume(volume_id=volume_id, initiator=initiator, chap_secret=chap_secret)
        return await self._invoke(EXPORT_VOLUME, request)

    async def unexport_volume(self, volume_id: str) -> Unexported:
        return await self._invoke(UNEXPORT_VOLUME, VolumeRef(volume_id=volume_id))

    async def inventory(self) -> Inventory:
        return await self._invoke(INVENTORY, Empty())

    async def create_backup(
        self, backup_id: str, volume_id: str, snapshot_id: str | None = None
    ) -> BackupFile:
        request = CreateBackup(backup_id=backup_id, volume_id=volume_id, snapshot_id=snapshot_id)
        return await self._invoke(CREATE_BACKUP, request, self.copy_timeout)

    async def restore_backup(self, backup_id: str, volume_id: str, size_gb: int) -> VolumeFile:
        request = RestoreBackup(backup_id=backup_id, volume_id=volume_id, size_gb=size_gb)
        return await self._invoke(RESTORE_BACKUP, request, self.copy_timeout)

    async def delete_backup(self, backup_id: str) -> BackupDeleted:
        return await self._invoke(DELETE_BACKUP, BackupRef(backup_id=backup_id))
