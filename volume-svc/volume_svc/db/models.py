"""The volume service's tables (its own database; no other service reads it).

The chassis tables (outbox, processed events, operation log, idempotency keys, agents)
are added by the chassis migration branch, not declared here. Invariants live in the
schema: one attachment, one export and one pending transfer per volume (no multiattach),
one usage row per (project, resource), snapshots hold their volume (a volume with
snapshots is not deleted).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common_rpc.chassis.sweeper import TransitionalMixin
from common_rpc.quotas import QuotaLimitColumns, QuotaUsageColumns


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


class Base(DeclarativeBase):
    pass


class VolumeType(Base):
    __tablename__ = "volume_types"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    is_public: Mapped[bool] = mapped_column(default=True)
    extra_specs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Volume(TransitionalMixin, Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(Integer)
    volume_type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id"))
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    host: Mapped[str] = mapped_column(String(255), default="")
    bootable: Mapped[bool] = mapped_column(default=False)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    # Cinder's admin metadata: set by actions (``readonly``), shown inside ``metadata``,
    # never changed by the owner's metadata calls.
    admin_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), default=None)
    source_volid: Mapped[str | None] = mapped_column(String(36), default=None)
    # The image the volume was made from, and Cinder's ``volume_image_metadata`` of it.
    image_id: Mapped[str | None] = mapped_column(String(36), default=None)
    image_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The CHAP secret of the volume's export; never shown in the API.
    chap_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    volume_type: Mapped[VolumeType] = relationship(lazy="selectin", viewonly=True)
    attachment: Mapped[Attachment | None] = relationship(lazy="selectin", viewonly=True)
    export: Mapped[VolumeExport | None] = relationship(lazy="selectin", viewonly=True)


class Snapshot(TransitionalMixin, Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255), default="")
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Backup(TransitionalMixin, Base):
    """A copy of a volume in the backup store of the volume's host (Cinder's backups).

    It outlives its volume (``volume_id`` is no foreign key): a backup of a deleted
    volume is restored to a new one. ``restore_volume_id`` names the volume a restore
    is writing while the backup is ``restoring``.
    """

    __tablename__ = "backups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    # The snapshot copied instead of the volume's current data, when one was named.
    snapshot_id: Mapped[str | None] = mapped_column(String(36), default=None)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255), default="")
    container: Mapped[str | None] = mapped_column(String(255), default=None)
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    fail_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    restore_volume_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the volume's data was read (Cinder's data_timestamp).
    data_timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """Who a volume is attached to; unique per volume (no multiattach).

    ``origin`` says which door made it: ``compute`` (its attach protocol over RPC, always
    ``attached``) or ``api`` (Block Storage's attachments API: ``reserved``, then
    ``attaching`` once a connector is given, ``attached`` when completed).
    """

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(
        ForeignKey("volumes.id", ondelete="CASCADE"), unique=True
    )
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    host_name: Mapped[str] = mapped_column(String(255), default="")
    mountpoint: Mapped[str] = mapped_column(String(255), default="")
    attached_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(32), default="attached")
    origin: Mapped[str] = mapped_column(String(16), default="compute")
    attach_mode: Mapped[str] = mapped_column(String(8), default="rw")
    # What the attachments API was given and answered (empty for compute's attachments).
    connector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    connection_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Transfer(Base):
    """A volume offered to another project: whoever shows the auth key may take it.

    Only a salted hash of the key is kept; the key itself is shown once, at create.
    """

    __tablename__ = "volume_transfers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(
        ForeignKey("volumes.id", ondelete="CASCADE"), unique=True
    )
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    source_project_id: Mapped[str] = mapped_column(String(64), index=True)
    salt: Mapped[str] = mapped_column(String(32))
    crypt_hash: Mapped[str] = mapped_column(String(128))
    # Cinder 3.55: the volume moves without its snapshots (they stay with the giver).
    no_snapshots: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VolumeExport(Base):
    """An iSCSI export the volume's agent must have: the target open to one initiator."""

    __tablename__ = "volume_exports"

    volume_id: Mapped[str] = mapped_column(
        ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True
    )
    initiator: Mapped[str] = mapped_column(String(255))
    connector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set before the target is removed: from then on no reconcile may bring it back.
    removing: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuotaUsage(QuotaUsageColumns, Base):
    """What a project holds; reserved by a conditional UPDATE in the creating transaction."""

    __tablename__ = "quota_usages"


class QuotaLimit(QuotaLimitColumns, Base):
    """A project's limit when an admin set one; otherwise the settings' default applies."""

    __tablename__ = "quota_limits"
