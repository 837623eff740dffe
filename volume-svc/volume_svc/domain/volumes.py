"""Volumes in the database: views, scoped reads, create with its quota, update, states.

The data plane work (the file, the export) happens in ``flows`` once these rows commit.

    vol = await create(session, ctx, settings, {"size": 1, "name": "data"})  # "creating"
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import VolumePayload
from common_rpc.contracts.volume import VolumeInfo
from common_rpc.errors import NotFound, QuotaExceeded
from common_rpc.outbox import add_event

from .. import events
from ..clients import ImageInfo
from ..db.models import Snapshot, Volume, utcnow
from ..settings import VolumeSettings
from . import checks, images, quotas, states, types
from .common import deadline, iso, metadata, new_id, owns, project_of, text
from .errors import forbidden, invalid, not_found

# The backend and pool name in Cinder's host strings (os-services shows ``<host>@file``).
BACKEND = "file"
# Cinder's InvalidVolume text for a delete that its conditions refuse (status, attached,
# snapshots): one sentence for every reason.
DELETE_REFUSED = (
    "Invalid volume: Volume status must be available or error or error_restoring or "
    "error_extending or error_managing and must not be migrating, attached, belong to a "
    "group, have snapshots, awaiting a transfer, or be disassociated from snapshots after "
    "volume transfer."
)


def links(base: str, project_id: str, volume_id: str) -> list[dict[str, str]]:
    path = f"/v3/{project_id}/volumes/{volume_id}"
    return [{"rel": "self", "href": base + path}, {"rel": "bookmark", "href": base + path}]


# Admin metadata keys Cinder shows inside a volume's ``metadata`` (its
# ``add_visible_admin_metadata``).
VISIBLE_ADMIN_METADATA = ("readonly", "attached_mode")


def attachments(vol: Volume) -> list[dict[str, Any]]:
    """The volume's attachment once attached (a reserved or connecting one is not shown,
    as Cinder shows only ``attached`` ones)."""
    att = vol.attachment
    if att is None or att.status != "attached":
        return []
    return [
        {
            "id": vol.id,
            "attachment_id": att.id,
            "volume_id": vol.id,
            "server_id": att.server_id,
            "host_name": att.host_name,
            "device": att.mountpoint,
            "attached_at": iso(att.attached_at),
        }
    ]


def backend_host(vol: Volume) -> str:
    """Cinder's ``host@backend#pool`` for the volume's host (one file backend, one pool)."""
    return f"{vol.host}@{BACKEND}#{BACKEND}"


def view(vol: Volume, ctx: RequestContext, base: str = "", *, detail: bool = True) -> dict:
    """Cinder's volume; ``detail`` (show and the detailed list) adds the extensions' fields:
    the project to whoever may read the volume, host and migration to admins only."""
    out: dict[str, Any] = {
        "id": vol.id,
        "name": vol.name,
        "size": vol.size,
        "status": vol.status,
        "description": vol.description,
        "volume_type": vol.volume_type.name if vol.volume_type else None,
        "availability_zone": vol.availability_zone,
        "bootable": "true" if vol.bootable else "false",
        "encrypted": False,
        "multiattach": False,
        "attachments": attachments(vol),
        "metadata": shown_metadata(vol),
        "snapshot_id": vol.snapshot_id,
        "source_volid": vol.source_volid,
        "user_id": vol.user_id,
        "created_at": iso(vol.created_at),
        "updated_at": iso(vol.updated_at),
        "consistencygroup_id": None,
        "replication_status": None,
        "links": links(base, vol.project_id, vol.id),
        "group_id": None,
        "provider_id": None,
        "service_uuid": None,
        "shared_targets": False,
        "migration_status": None,
    }
    if detail and vol.image_metadata:
        # Shown and listed in detail only: Cinder's create and update answers omit it.
        out["volume_image_metadata"] = dict(vol.image_metadata)
    if detail:
        out["os-vol-tenant-attr:tenant_id"] = vol.project_id
    if detail and ctx.is_admin:
        out["os-vol-host-attr:host"] = backend_host(vol)
        out["os-vol-mig-status-attr:migstat"] = None
        out["os-vol-mig-status-attr:name_id"] = None
    return out


def shown_metadata(vol: Volume) -> dict[str, str]:
    """The owner's metadata with the visible admin metadata (``readonly``) over it."""
    admin = vol.admin_metadata or {}
    visible = {k: admin[k] for k in VISIBLE_ADMIN_METADATA if k in admin}
    return dict(vol.metadata_ or {}) | visible


def info(vol: Volume, ctx: RequestContext) -> VolumeInfo:
    """The volume as the ``volume`` topic answers it: Cinder's detailed view, typed."""
    return VolumeInfo.model_validate(view(vol, ctx))


def summary(vol: Volume, base: str = "") -> dict[str, Any]:
    return {"id": vol.id, "name": vol.name, "links": links(base, vol.project_id, vol.id)}


def visible(ctx: RequestContext, all_tenants: bool = False) -> Any:
    query = select(Volume).order_by(Volume.created_at.desc(), Volume.id)
    if not (ctx.is_admin and all_tenants):
        query = query.where(Volume.project_id == ctx.project_id)
    return query


async def get(session: AsyncSession, ctx: RequestContext, volume_id: str) -> Volume:
    query = select(Volume).where(Volume.id == volume_id)
    vol = (await session.scalars(query)).first()
    if vol is None or not owns(ctx, vol.project_id):
        raise not_found("Volume", volume_id)
    return vol


async def list_all(session: AsyncSession, ctx: RequestContext, all_tenants: bool) -> list[Volume]:
    return list(await session.scalars(visible(ctx, all_tenants)))


async def create(
    session: AsyncSession,
    ctx: RequestContext,
    settings: VolumeSettings,
    body: dict[str, Any],
    *,
    image: ImageInfo | None = None,
) -> Volume:
    """Insert the row in ``creating`` and reserve its quota in this same transaction;
    ``image`` is the body's ``imageRef`` already looked up (``images.resolve``)."""
    project = project_of(ctx)
    # Cinder's order: the body's schema, the volume type, the sources, then the size.
    size_given = checks.volume_size(body.get("size"), "size", allow_null=True)
    snapshot_id = checks.uuid_or_null(body.get("snapshot_id"), "snapshot_id")
    source_id = checks.uuid_or_null(body.get("source_volid"), "source_volid")
    if snapshot_id is not None and source_id is not None:
        raise invalid("Only one of snapshot_id and source_volid may be given.")
    if body.get("backup_id"):
        raise invalid("Creating a volume from a backup is not supported: restore the backup.")
    if image is not None and (snapshot_id is not None or source_id is not None):
        raise invalid("Only one of imageRef, snapshot_id and source_volid may be given.")
    type_ref = body.get("volume_type")
    if type_ref:
        try:
            vtype = await types.get(session, ctx, str(type_ref))
        except NotFound:
            raise NotFound(f"Volume type with name {type_ref} could not be found.") from None
    else:
        vtype = await types.ensure_default(session, settings)
    host = settings.volume_host()
    if snapshot_id is not None:
        snap = await _snapshot(session, ctx, snapshot_id)
        states.check(snap, "source")
        size = _at_least(size_given, snap.size, "the snapshot size", "snapshot")
        host = snap.host
    elif source_id is not None:
        source = await get(session, ctx, source_id)
        states.check(source, "clone")
        # Cinder's text has the two spaces.
        size = _at_least(size_given, source.size, "original volume size ", "volume")
        host = source.host
    elif size_given is None:
        raise checks.invalid_input("Volume size 'None' must be an integer and greater than 0")
    else:
        size = size_given
        if image is not None:
            images.check_size(image, size)
    _within_limit(size, settings)
    zone = body.get("availability_zone") or settings.availability_zone
    if zone != settings.availability_zone:
        raise invalid(f"Availability zone '{zone}' is invalid.")
    vol = Volume(
        id=new_id(),
        project_id=project,
        user_id=ctx.user_id or "",
        name=text(body, "name", "display_name") or "",
        description=text(body, "description", "display_description") or "",
        size=size,
        volume_type_id=vtype.id,
        availability_zone=zone,
        host=host,
        bootable=False,
        metadata_=metadata(body) or {},
        snapshot_id=str(snapshot_id) if snapshot_id is not None else None,
        source_volid=str(source_id) if source_id is not None else None,
        image_id=image.id if image is not None else None,
        image_metadata=images.metadata(image) if image is not None else {},
        chap_secret=secrets.token_hex(8),
        status="creating",
        task_owner=host,
        task_deadline=deadline(settings.task_deadline_s),
    )
    await quotas.reserve(session, settings, project, {"volumes": 1, "gigabytes": size})
    session.add(vol)
    await session.flush()
    await session.refresh(vol)
    return vol


def _at_least(given: int | None, minimum: int, what: str, source: str) -> int:
    """The size asked for (the source's when none), never below the source's."""
    if given is None:
        return minimum
    if given < minimum:
        raise checks.invalid_input(
            f"Volume size '{given}'GB cannot be smaller than {what} {minimum}GB. "
            f"They must be >= original {source} size."
        )
    return given


def _within_limit(size: int, settings: VolumeSettings) -> None:
    """Cinder's per-volume size limit (413): here the backend's largest volume."""
    if size > settings.max_volume_size_gb:
        raise QuotaExceeded(
            f"Requested volume size {size}G is larger than maximum allowed limit "
            f"{settings.max_volume_size_gb}G."
        )


async def _snapshot(session: AsyncSession, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    snap = await session.get(Snapshot, snapshot_id)
    if snap is None or not owns(ctx, snap.project_id):
        raise not_found("Snapshot", snapshot_id)
    return snap


async def update(
    session: AsyncSession, ctx: RequestContext, volume_id: str, body: dict[str, Any]
) -> Volume:
    vol = await get(session, ctx, volume_id)
    name = text(body, "name", "display_name")
    if name is not None:
        vol.name = name
    description = text(body, "description", "display_description")
    if description is not None:
        vol.description = description
    meta = metadata(body)
    if meta is not None:
        vol.metadata_ = meta
    vol.updated_at = utcnow()
    await session.flush()
    await emit(session, ctx, vol, events.UPDATE)
    return vol


async def begin_delete(
    session: AsyncSession, ctx: RequestContext, settings: VolumeSettings, volume_id: str
) -> Volume:
    vol = await get(session, ctx, volume_id)
    if (
        vol.status not in states.VOLUME_FROM["delete"]
        or vol.attachment is not None
        or await session.scalar(select(exists().where(Snapshot.volume_id == volume_id)))
    ):
        raise invalid(DELETE_REFUSED)
    await states.move(
        session, vol, "delete", to="deleting", owner=vol.host,
        deadline=timedelta(seconds=settings.task_deadline_s),
    )  # fmt: skip
    return vol


async def begin_extend(
    session: AsyncSession,
    ctx: RequestContext,
    settings: VolumeSettings,
    volume_id: str,
    new_size: Any,
) -> tuple[Volume, int]:
    size = checks.volume_size(new_size, "new_size")
    assert size is not None
    vol = await get(session, ctx, volume_id)
    if size <= vol.size:
        raise checks.invalid_input(
            "New size for extend must be greater than current size. "
            f"(current: {vol.size}, extended: {new_size})."
        )
    _within_limit(size, settings)
    states.check(vol, "extend")
    await quotas.reserve(session, settings, vol.project_id, {"gigabytes": size - vol.size})
    await states.move(
        session, vol, "extend", to="extending", owner=vol.host,
        deadline=timedelta(seconds=settings.task_deadline_s),
    )  # fmt: skip
    return vol, size


async def begin_upload(
    session: AsyncSession,
    ctx: RequestContext,
    settings: VolumeSettings,
    volume_id: str,
    image_id: str,
    force: bool,
) -> Volume:
    """Hold an available volume ``uploading`` into ``image_id``; an in-use one (forced)
    stays in use, its copy as consistent as a forced snapshot's."""
    vol = await get(session, ctx, volume_id)
    images.check_uploadable(vol, force)
    if vol.status == "available":
        await states.move(
            session, vol, "upload", to="uploading", owner=images.upload_holder(image_id),
            deadline=timedelta(seconds=settings.task_deadline_s),
        )  # fmt: skip
    return vol


async def set_bootable(session: AsyncSession, ctx: RequestContext, vol: Volume, args: Any) -> None:
    """``os-set_bootable``: any status (Cinder's ``volume_api.update``)."""
    if not isinstance(args, dict):
        raise checks.field_error("os-set_bootable", args, f"{args!r} is not of type 'object'")
    if "bootable" not in args:
        raise checks.required("os-set_bootable", args, "bootable")
    _only(args, "os-set_bootable", ("bootable",))
    vol.bootable = checks.boolean(args["bootable"], "bootable")
    vol.updated_at = utcnow()
    await session.flush()
    await emit(session, ctx, vol, events.UPDATE)


async def update_readonly(
    session: AsyncSession, ctx: RequestContext, vol: Volume, args: Any
) -> None:
    """``os-update_readonly_flag``: admin metadata ``readonly`` "True"/"False" (Cinder's
    spelling), only while the volume is ``available``."""
    if not isinstance(args, dict):
        raise checks.field_error(
            "os-update_readonly_flag", args, f"{args!r} is not of type 'object'"
        )
    if "readonly" not in args:
        raise checks.required("os-update_readonly_flag", args, "readonly")
    _only(args, "os-update_readonly_flag", ("readonly",))
    flag = checks.boolean(args["readonly"], "readonly")
    if vol.status != "available":
        raise invalid(
            f"Invalid volume: Volume {vol.id} status must be available to update readonly "
            f"flag, but current status is: {vol.status}."
        )
    vol.admin_metadata = (vol.admin_metadata or {}) | {"readonly": str(flag)}
    vol.updated_at = utcnow()
    await session.flush()
    await emit(session, ctx, vol, events.UPDATE)


def _only(args: dict[str, Any], field: str, allowed: tuple[str, ...]) -> None:
    """The schemas' ``additionalProperties: False``."""
    extra = [k for k in args if k not in allowed]
    if extra:
        raise checks.additional(field, args, extra)


async def reset_status(
    session: AsyncSession, ctx: RequestContext, volume_id: str, body: dict[str, Any]
) -> Volume:
    """Admin only: set the status an operator decided on (Cinder: schema, volume, policy)."""
    if not body.get("status"):
        raise checks.field_error(
            "os-reset_status", body, f"{body!r} is not a 'validate_volume_reset_body'"
        )
    status = checks.status(body["status"], "status", "volume_status", states.VOLUME_STATUSES)
    vol = await get(session, ctx, volume_id)
    if not ctx.is_admin:
        raise forbidden(
            "Policy doesn't allow volume_extension:volume_admin_actions:reset_status "
            "to be performed."
        )
    vol.status = status
    vol.task_owner = None
    vol.task_deadline = None
    vol.updated_at = utcnow()
    await session.flush()
    await emit(session, ctx, vol, events.UPDATE)
    return vol


async def emit(session: AsyncSession, ctx: RequestContext, vol: Volume, action: str) -> None:
    payload: BaseModel = VolumePayload(
        id=vol.id,
        project_id=vol.project_id,
        name=vol.name,
        status=vol.status,
        size=vol.size,
        attachments=[{k: str(v) for k, v in a.items() if v is not None} for a in attachments(vol)],
    )
    await add_event(
        session, events.VOLUME.format(action=action), payload, project_id=vol.project_id, ctx=ctx
    )
