"""Typed clients of what volume-api calls: the volume-agent of one host (``volume.<host>``),
and the Image v2 API (compute-svc's, over HTTP as the caller).

    agent = AgentApi(runtime.rpc, "st1", timeout=30)
    await agent.create_volume("v1", size_gb=1)                       # VolumeFile
    export = await agent.export_volume("v1", initiator=iqn, chap_secret=secret)
    export.target_iqn, export.target_portal, export.target_lun, export.auth_username

Every call has a deadline (a data copy the longer one); a host that is down raises
``RpcTimeout``.

    images = ImageApi("http://compute:8774/image", timeout=30)
    image = await images.show(image_id, identity)    # ImageInfo; 404: NotFound

The image API is reached with the caller's own signed identity (the gateway's
``X-Stackling-Identity`` the request came with), so it answers what the caller may see,
as Cinder reads Glance with the user's token; no service holds a key to sign with.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from common_rpc.chassis.agent import agent_topic
from common_rpc.chassis.identity import IDENTITY_HEADER
from common_rpc.context import REQUEST_ID_HEADER, current_context
from common_rpc.contracts.volume import VolumeRef
from common_rpc.errors import Invalid, NotFound, ServiceUnavailable
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
    ImageSource,
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
        image: ImageSource | None = None,
    ) -> VolumeFile:
        copying = snapshot_id is not None or source_volume_id is not None or image is not None
        request = CreateVolume(
            volume_id=volume_id,
            size_gb=size_gb,
            snapshot_id=snapshot_id,
            source_volume_id=source_volume_id,
            image=image,
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

    async def upload_image(
        self, volume_id: str, url: str, identity: str, disk_format: str
    ) -> ImageUploaded:
        request = UploadImage(
            volume_id=volume_id, url=url, identity=identity, disk_format=disk_format
        )
        return await self._invoke(UPLOAD_IMAGE, request, self.copy_timeout)


class ImageInfo(BaseModel):
    """What a volume needs of an Image v2 record (Glance's names)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str | None = None
    status: str
    disk_format: str | None = None
    container_format: str | None = None
    size: int | None = None
    min_disk: int = 0
    min_ram: int = 0
    checksum: str | None = None


class ImageApi:
    """Image v2 over HTTP (compute-svc serves it under ``/image``), as the caller."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def file_url(self, image_id: str) -> str:
        return f"{self.base_url}/v2/images/{urllib.parse.quote(image_id, safe='')}/file"

    # Free-form: the image API's own JSON (Glance's records, not one of our contracts).
    def _call(
        self, method: str, path: str, identity: str, body: dict[str, Any] | None = None
    ) -> Any:
        headers = {
            IDENTITY_HEADER: identity,
            REQUEST_ID_HEADER: current_context().request_id,
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                raise NotFound("image") from None
            if 400 <= exc.code < 500:
                raise Invalid(f"the image API refused the request ({exc.code})") from None
            raise ServiceUnavailable(f"the image API answered {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise ServiceUnavailable(f"the image API did not answer: {exc}") from None

    def _get(self, path: str, identity: str) -> Any:
        return self._call("GET", path, identity)

    async def show(self, image_id: str, identity: str) -> ImageInfo:
        """The image's record; NotFound when it does not exist or the caller may not see it."""
        path = f"/v2/images/{urllib.parse.quote(image_id, safe='')}"
        body = await asyncio.to_thread(self._get, path, identity)
        try:
            return ImageInfo.model_validate(body)
        except ValidationError:
            raise ServiceUnavailable("the image API answered an unexpected record") from None

    # ``fields``: a Glance image create body (free-form properties included).
    async def create(self, fields: dict[str, Any], identity: str) -> ImageInfo:
        """A new (``queued``) image record owned by the caller's project."""
        body = await asyncio.to_thread(self._call, "POST", "/v2/images", identity, fields)
        try:
            return ImageInfo.model_validate(body)
        except ValidationError:
            raise ServiceUnavailable("the image API answered an unexpected record") from None

    async def delete(self, image_id: str, identity: str) -> None:
        """Remove an image this service created for the caller (an upload that failed)."""
        path = f"/v2/images/{urllib.parse.quote(image_id, safe='')}"
        await asyncio.to_thread(self._call, "DELETE", path, identity)

    async def find(self, name: str, identity: str) -> list[ImageInfo]:
        """The images named ``name`` the caller sees (an ``imageRef`` may be a name)."""
        path = "/v2/images?" + urllib.parse.urlencode({"name": name})
        body = await asyncio.to_thread(self._get, path, identity)
        try:
            return [ImageInfo.model_validate(i) for i in body.get("images", [])]
        except (ValidationError, AttributeError):
            raise ServiceUnavailable("the image API answered an unexpected list") from None
