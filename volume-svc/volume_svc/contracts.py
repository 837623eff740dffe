"""What volume-api and its volume-agents say to each other, typed once for both sides.

Two topics:

- ``volume`` (``API``): what other services call (``common_rpc.contracts.volume``), plus
  ``host_state`` for this service's agents (their reconcile) and ``audit`` for operators;
- ``volume.<host>`` (``AGENT``): the commands the API sends one host's volume-agent.
  Each carries the desired result (a size, an export), so repeating one is harmless.

    host = await rpc.invoke(agent_topic("volume", "st1"), EXPORT_VOLUME,
                            ExportVolume(volume_id=v, initiator=iqn, chap_secret=secret))
    host.target_iqn, host.target_portal, host.target_lun, host.auth_username

API version history (of ``volume.<host>``):
    1.0 - create_volume, delete_volume, extend_volume, create_snapshot, delete_snapshot,
          export_volume, unexport_volume, inventory
    1.1 - create_backup, restore_backup, delete_backup; inventory lists backups
    1.2 - create_volume from an image (``image``), upload_image
"""

from __future__ import annotations

from pydantic import Field

from common_rpc.audit import AuditReport
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.contracts.volume import VOLUME, VolumeRef
from common_rpc.methods import Contract, Empty, Message, Method

VERSION = "1.2"

# ---------------------------------------------------------------- volume: host_state, audit


class DesiredExport(Message):
    """An export the database expects on the host, with its CHAP secret."""

    volume_id: str
    initiator: str
    chap_secret: str


class HostState(Message):
    """What one host must hold: its volumes, and the exports to (re)make."""

    host: str
    volumes: list[str] = []
    exports: list[DesiredExport] = []


HOST_STATE = Method(
    "host_state", HostStateRequest, HostState, doc="the host's desired exports (agents only)"
)
AUDIT = Method("audit", Empty, AuditReport, doc="every host against the database (operators)")

# The API's topic: the cross-service contract and what only this service's parts use.
API = Contract("volume", [*VOLUME.methods, HOST_STATE, AUDIT])

# ---------------------------------------------------------------- volume.<host>: commands


class ImageSource(Message):
    """Where the host reads an image's bytes: the Image v2 API's file URL, as the caller.

    ``identity`` is the caller's signed identity (short-lived, the gateway's): the image
    API admits the host's download as that caller; it is never logged.
    """

    image_id: str
    url: str
    identity: str = Field(repr=False)
    disk_format: str
    # Glance's md5 of the bytes, checked after the download.
    checksum: str | None = None
    size_bytes: int | None = None


class CreateVolume(Message):
    """A volume file of ``size_gb``; a copy of a snapshot or of another volume when named,
    or an image's bytes converted to raw."""

    volume_id: str
    size_gb: int
    snapshot_id: str | None = None
    source_volume_id: str | None = None
    image: ImageSource | None = None


class ExtendVolume(Message):
    volume_id: str
    size_gb: int


class VolumeFile(Message):
    volume_id: str
    path: str
    size_gb: int


class VolumeDeleted(Message):
    volume_id: str
    deleted: bool = True


class CreateSnapshot(Message):
    snapshot_id: str
    volume_id: str


class SnapshotRef(Message):
    snapshot_id: str


class SnapshotFile(Message):
    snapshot_id: str
    path: str


class SnapshotDeleted(Message):
    snapshot_id: str
    deleted: bool = True


class UploadImage(Message):
    """The volume's bytes, in ``disk_format``, PUT to an image's file URL as the caller
    (``identity``, as in ``ImageSource``)."""

    volume_id: str
    url: str
    identity: str = Field(repr=False)
    disk_format: str


class ImageUploaded(Message):
    volume_id: str
    size_bytes: int


class CreateBackup(Message):
    """A copy of the volume's file (or of its snapshot's) in the host's backup store."""

    backup_id: str
    volume_id: str
    snapshot_id: str | None = None


class BackupFile(Message):
    backup_id: str
    path: str
    size_bytes: int


class RestoreBackup(Message):
    """The volume's file replaced whole by the backup's bytes, grown to ``size_gb``."""

    backup_id: str
    volume_id: str
    size_gb: int


class BackupRef(Message):
    backup_id: str


class BackupDeleted(Message):
    backup_id: str
    deleted: bool = True


class ExportVolume(Message):
    """One target for the volume, open to ``initiator`` only, behind a CHAP account."""

    volume_id: str
    initiator: str
    chap_secret: str


class Exported(Message):
    volume_id: str
    target_iqn: str
    target_portal: str
    target_lun: int
    auth_username: str


class Unexported(Message):
    volume_id: str
    unexported: bool = True


class Inventory(Message):
    """What the host holds, for the audit: files by id, targets by volume id."""

    volumes: list[str] = []
    snapshots: list[str] = []
    backups: list[str] = []
    # Backup copies cut short (a ``.part`` file left by a killed agent).
    partial_backups: list[str] = []
    # volume id -> the initiators its target admits
    exports: dict[str, list[str]] = {}
    target_helper: str = ""


CREATE_VOLUME = Method("create_volume", CreateVolume, VolumeFile)
DELETE_VOLUME = Method(
    "delete_volume", VolumeRef, VolumeDeleted, doc="the export (checked gone), then the file"
)
EXTEND_VOLUME = Method("extend_volume", ExtendVolume, VolumeFile)
CREATE_SNAPSHOT = Method("create_snapshot", CreateSnapshot, SnapshotFile)
DELETE_SNAPSHOT = Method("delete_snapshot", SnapshotRef, SnapshotDeleted)
EXPORT_VOLUME = Method("export_volume", ExportVolume, Exported)
UNEXPORT_VOLUME = Method(
    "unexport_volume", VolumeRef, Unexported, doc="raises if the target is still there after"
)
INVENTORY = Method("inventory", Empty, Inventory)
CREATE_BACKUP = Method("create_backup", CreateBackup, BackupFile, doc="copy into the store")
RESTORE_BACKUP = Method("restore_backup", RestoreBackup, VolumeFile, doc="the volume replaced")
DELETE_BACKUP = Method("delete_backup", BackupRef, BackupDeleted)
UPLOAD_IMAGE = Method("upload_image", UploadImage, ImageUploaded, doc="the volume to an image")

AGENT = Contract(
    "volume.<host>",
    [
        CREATE_VOLUME,
        DELETE_VOLUME,
        EXTEND_VOLUME,
        CREATE_SNAPSHOT,
        DELETE_SNAPSHOT,
        EXPORT_VOLUME,
        UNEXPORT_VOLUME,
        INVENTORY,
        CREATE_BACKUP,
        RESTORE_BACKUP,
        DELETE_BACKUP,
        UPLOAD_IMAGE,
    ],
)
