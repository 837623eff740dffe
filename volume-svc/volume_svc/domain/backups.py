"""Backups in the database: Cinder's v3 ``/backups``, a copy of a volume in the backup
store of the volume's host, and its restore to a new or an existing volume.

backup = await create(session, ctx, settings, {"volume_id": vid, "name": "nightly"})
vol, new = await begin_restore(session, ctx, settings, backup.id, {"name": "back"})

A backup of an ``available`` volume holds it ``backing-up`` until the copy is made; an
``in-use`` one (only with ``force``) stays attached and in use, its copy as consistent as
a forced snapshot's. A restore holds the backup ``restoring`` and its volume
``restoring-backup``. The copies themselves run in ``flows`` after the request answered.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.volume_backup import BackupPayload
from common_rpc.errors import NotFound
from common_rpc.outbox import add_event

from .. import events
from ..db.models import Backup, Snapshot, Volume, utcnow
from ..settings import VolumeSettings
from . import checks, quotas, states, types, volumes
from .common import deadline, iso, metadata, new_id, owns, project_of, text
from .errors import invalid, not_found

# The keys of Cinder's backup create schema (``backups.create``).
CREATE_KEYS = (
    "volume_id", "container", "description", "incremental", "force", "name", "snapshot_id",
    "metadata", "availability_zone", "display_name", "display_description",
)  # fmt: skip


def holder(backup_id: str) -> str:
    """The ``task_owner`` of a volume this backup holds ``backing-up``."""
    return f"backup:{backup_id}"


def links(base: str, project_id: str, backup_id: str) -> list[dict[str, str]]:
    path = f"/v3/{project_id}/backups/{backup_id}"
    return [{"rel": "self", "href": base + path}, {"rel": "bookmark", "href": base + path}]


def summary(backup: Backup, base: str = "") -> dict[str, Any]:
    return {
        "id": backup.id,
        "name": backup.name,
        "links": links(base, backup.project_id, backup.id),
    }


def view(backup: Backup, ctx: RequestContext, base: str = "") -> dict[str, Any]:
    """Cinder's detailed backup (its ``ViewBuilder.detail``, with 3.43's metadata and
    3.56's user_id); the project to admins, as Cinder's ``os-backup-project-attr``."""
    out: dict[str, Any] = {
        "id": backup.id,
        "status": backup.status,
        "size": backup.size,
        "object_count": 1 if backup.status == "available" else 0,
        "availability_zone": backup.availability_zone,
        "container": backup.container,
        "created_at": iso(backup.created_at),
        "updated_at": iso(backup.updated_at),
        "name": backup.name,
        "description": backup.description,
        "fail_reason": backup.fail_reason,
        "volume_id": backup.volume_id,
        "links": links(base, backup.project_id, backup.id),
        "is_incremental": False,
        "has_dependent_backups": False,
        "snapshot_id": backup.snapshot_id,
        "data_timestamp": iso(backup.data_timestamp),
        "metadata": dict(backup.metadata_ or {}),
        "user_id": backup.user_id,
        "encryption_key_id": None,
    }
    if ctx.is_admin:
        out["os-backup-project-attr:project_id"] = backup.project_id
    return out


async def get(session: AsyncSession, ctx: RequestContext, backup_id: str) -> Backup:
    backup = await session.get(Backup, backup_id)
    if backup is None or not owns(ctx, backup.project_id):
        raise not_found("Backup", backup_id)
    return backup


async def list_all(session: AsyncSession, ctx: RequestContext, all_tenants: bool) -> list[Backup]:
    query = select(Backup).order_by(Backup.created_at.desc(), Backup.id)
    if not (ctx.is_admin and all_tenants):
        query = query.where(Backup.project_id == ctx.project_id)
    return list(await session.scalars(query))


async def create(
    session: AsyncSession, ctx: RequestContext, settings: VolumeSettings, body: dict[str, Any]
) -> Backup:
    """Cinder's checks in its order: the schema, the volume (404), its status and the
    force flag, then the quotas (413), all in the transaction that inserts the row."""
    project_of(ctx)
    extra = [k for k in body if k not in CREATE_KEYS]
    if extra:
        raise checks.additional("backup", body, extra)
    if "volume_id" not in body:
        raise checks.required("backup", body, "volume_id")
    volume_id = checks.uuid_or_null(body["volume_id"], "volume_id")
    if volume_id is None:
        raise checks.field_error("volume_id", None, "None is not of type 'string'")
    snapshot_id = checks.uuid_or_null(body.get("snapshot_id"), "snapshot_id")
    forced = body.get("force") is not None and checks.boolean(body["force"], "force")
    incremental = body.get("incremental") is not None and checks.boolean(
        body["incremental"], "incremental"
    )
    container = text(body, "container")
    vol = await volumes.get(session, ctx, volume_id)
    if incremental:
        raise invalid(
            "Invalid backup: Incremental backups are not supported by the file backup driver."
        )
    if vol.status not in ("available", "in-use"):
        raise invalid(
            "Invalid volume: Volume to be backed up must be available or in-use, but the "
            f'current status is "{vol.status}".'
        )
    if vol.status == "in-use" and not forced and snapshot_id is None:
        raise invalid("Invalid volume: Backing up an in-use volume must use the force flag.")
    data_at = utcnow()
    if snapshot_id is not None:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None or snap.volume_id != vol.id or not owns(ctx, snap.project_id):
            raise not_found("Snapshot", snapshot_id)
        if snap.status != "available":
            raise invalid(
                "Invalid snapshot: Snapshot to be backed up must be available, but the "
                f'current status is "{snap.status}".'
            )
        data_at = snap.created_at
    backup = Backup(
        id=new_id(),
        project_id=vol.project_id,
        user_id=ctx.user_id or "",
        volume_id=vol.id,
        snapshot_id=snapshot_id,
        name=text(body, "name", "display_name") or "",
        description=text(body, "description", "display_description") or "",
        size=vol.size,
        host=vol.host,
        container=container or None,
        availability_zone=vol.availability_zone,
        metadata_=metadata(body) or {},
        data_timestamp=data_at,
        status="creating",
        task_owner=vol.host,
        task_deadline=deadline(settings.task_deadline_s),
    )
    await quotas.reserve(
        session, settings, vol.project_id, {"backups": 1, "backup_gigabytes": vol.size}
    )
    if vol.status == "available" and snapshot_id is None:
        await states.move(
            session, vol, "backup", to="backing-up", owner=holder(backup.id),
            deadline=timedelta(seconds=settings.task_deadline_s),
        )  # fmt: skip
    session.add(backup)
    await session.flush()
    return backup


async def begin_delete(
    session: AsyncSession, ctx: RequestContext, settings: VolumeSettings, backup_id: str
) -> Backup:
    backup = await get(session, ctx, backup_id)
    if backup.status not in states.BACKUP_FROM["delete"]:
        raise invalid("Invalid backup: Backup status must be available or error")
    await states.move(
        session, backup, "delete", to="deleting", owner=backup.host,
        deadline=timedelta(seconds=settings.task_deadline_s),
    )  # fmt: skip
    return backup


async def begin_restore(
    session: AsyncSession,
    ctx: RequestContext,
    settings: VolumeSettings,
    backup_id: str,
    body: dict[str, Any],
) -> tuple[Backup, Volume, bool]:
    """The backup ``restoring`` and its target ``restoring-backup``: the named volume
    (available, large enough, on the backup's host) or a new one of the backup's size
    with its quota. Returns (backup, volume, whether the volume is new)."""
    project = project_of(ctx)
    extra = [k for k in body if k not in ("volume_id", "name")]
    if extra:
        raise checks.additional("restore", body, extra)
    volume_id = checks.uuid_or_null(body.get("volume_id"), "volume_id")
    name = text(body, "name")
    backup = await get(session, ctx, backup_id)
    if backup.status != "available":
        raise invalid("Invalid backup: Backup status must be available")
    until = timedelta(seconds=settings.task_deadline_s)
    if volume_id is None:
        vtype = await types.ensure_default(session, settings)
        vol = Volume(
            id=new_id(),
            project_id=project,
            user_id=ctx.user_id or "",
            name=name or f"restore_backup_{backup.id}",
            description="auto-created_from_restore_from_backup",
            size=backup.size,
            volume_type_id=vtype.id,
            availability_zone=backup.availability_zone,
            host=backup.host,
            metadata_={},
            chap_secret=secrets.token_hex(8),
            status="restoring-backup",
            task_owner=backup.host,
            task_deadline=deadline(settings.task_deadline_s),
        )
        await quotas.reserve(session, settings, project, {"volumes": 1, "gigabytes": vol.size})
        session.add(vol)
        await session.flush()
        await session.refresh(vol)
        new = True
    else:
        try:
            vol = await volumes.get(session, ctx, volume_id)
        except NotFound:
            raise not_found("Volume", volume_id) from None
        if vol.status != "available":
            raise invalid(
                "Invalid volume: Volume to be restored to must be available, but the current "
                f'status is "{vol.status}".'
            )
        if vol.size < backup.size:
            raise invalid(
                f"Invalid volume: volume size {vol.size} is too small to restore backup of "
                f"size {backup.size}."
            )
        if vol.host != backup.host:
            raise invalid(
                "Invalid volume: the backup is kept on another storage host than the volume; "
                "restore it to a new volume."
            )
        await states.move(
            session, vol, "restore", to="restoring-backup", owner=vol.host, deadline=until
        )
        new = False
    await states.move(
        session, backup, "restore", to="restoring", owner=backup.host, deadline=until,
        restore_volume_id=vol.id,
    )  # fmt: skip
    return backup, vol, new


def restore_view(backup: Backup, vol: Volume) -> dict[str, Any]:
    return {"backup_id": backup.id, "volume_id": vol.id, "volume_name": vol.name}


async def emit(session: AsyncSession, ctx: RequestContext, backup: Backup, action: str) -> None:
    payload: BaseModel = BackupPayload(
        id=backup.id,
        project_id=backup.project_id,
        volume_id=backup.volume_id,
        status=backup.status,
        size=backup.size,
        restore_volume_id=backup.restore_volume_id if action == events.RESTORE else None,
    )
    await add_event(
        session, events.BACKUP.format(action=action), payload, project_id=backup.project_id,
        ctx=ctx,
    )  # fmt: skip


async def update(
    session: AsyncSession, ctx: RequestContext, backup_id: str, body: dict[str, Any]
) -> Backup:
    extra = [k for k in body if k not in ("name", "description", "metadata")]
    if extra:
        raise checks.additional("backup", body, extra)
    backup = await get(session, ctx, backup_id)
    name = text(body, "name")
    if name is not None:
        backup.name = name
    description = text(body, "description")
    if description is not None:
        backup.description = description
    meta = metadata(body)
    if meta is not None:
        backup.metadata_ = meta
    backup.updated_at = utcnow()
    await session.flush()
    return backup


async def reset_status(
    session: AsyncSession, ctx: RequestContext, backup_id: str, body: dict[str, Any]
) -> Backup:
    """Admin only (the caller checked): the status an operator decided on."""
    if "status" not in body:
        raise checks.required("os-reset_status", body, "status")
    status = checks.status(body["status"], "status", "backup_status", ("available", "error"))
    backup = await get(session, ctx, backup_id)
    backup.status = status
    backup.task_owner = None
    backup.task_deadline = None
    backup.updated_at = utcnow()
    await session.flush()
    return backup
