"""Snapshots in the database: a point-in-time copy of one volume, on the volume's host.

snap = await create(session, ctx, settings, {"volume_id": vid, "name": "before"})
view(snap)                  # what create and update answer
view(snap, detail=True)     # show and the detailed list: with progress and project_id
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import SnapshotPayload
from common_rpc.errors import NotFound
from common_rpc.outbox import add_event

from .. import events
from ..db.models import Snapshot, utcnow
from ..settings import VolumeSettings
from . import checks, quotas, states, volumes
from .common import deadline, iso, metadata, new_id, owns, project_of, text
from .errors import forbidden, invalid, not_found

# The statuses of a snapshot whose copy was made (Cinder sets progress to 100% then).
MADE = ("available", "deleting", "error_deleting")


def view(snap: Snapshot, *, detail: bool = False) -> dict[str, Any]:
    """Cinder's snapshot; ``detail`` (show and the detailed list) adds the extended
    attributes, which Cinder shows every reader of the snapshot (not only admins)."""
    out: dict[str, Any] = {
        "id": snap.id,
        "name": snap.name,
        "description": snap.description,
        "volume_id": snap.volume_id,
        "size": snap.size,
        "status": snap.status,
        "metadata": dict(snap.metadata_ or {}),
        "created_at": iso(snap.created_at),
        "updated_at": iso(snap.updated_at),
    }
    if detail:
        out["os-extended-snapshot-attributes:progress"] = "100%" if snap.status in MADE else "0%"
        out["os-extended-snapshot-attributes:project_id"] = snap.project_id
    return out


async def get(session: AsyncSession, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    snap = await session.get(Snapshot, snapshot_id)
    if snap is None or not owns(ctx, snap.project_id):
        raise not_found("Snapshot", snapshot_id)
    return snap


async def list_all(session: AsyncSession, ctx: RequestContext, all_tenants: bool) -> list[Snapshot]:
    query = select(Snapshot).order_by(Snapshot.created_at.desc(), Snapshot.id)
    if not (ctx.is_admin and all_tenants):
        query = query.where(Snapshot.project_id == ctx.project_id)
    return list(await session.scalars(query))


async def create(
    session: AsyncSession, ctx: RequestContext, settings: VolumeSettings, body: dict[str, Any]
) -> Snapshot:
    """Cinder's checks in its order: the body's schema, then the volume (``volume_id``
    null is Cinder's "Volume None could not be found.", 404), then its status."""
    project_of(ctx)
    if "volume_id" not in body:
        raise checks.required("snapshot", body, "volume_id")
    volume_id = checks.uuid_or_null(body["volume_id"], "volume_id")
    force = body.get("force")
    forced = force is not None and checks.boolean(force, "force")
    vol = await volumes.get(session, ctx, str(volume_id))
    states.check(vol, "snapshot_forced" if forced else "snapshot")
    snap = Snapshot(
        id=new_id(),
        project_id=vol.project_id,
        user_id=ctx.user_id or "",
        volume_id=vol.id,
        name=text(body, "name", "display_name") or "",
        description=text(body, "description", "display_description") or "",
        size=vol.size,
        host=vol.host,
        metadata_=metadata(body) or {},
        status="creating",
        task_owner=vol.host,
        task_deadline=deadline(settings.task_deadline_s),
    )
    await quotas.reserve(session, settings, vol.project_id, {"snapshots": 1, "gigabytes": vol.size})
    session.add(snap)
    await session.flush()
    return snap


async def update(
    session: AsyncSession, ctx: RequestContext, snapshot_id: str, body: dict[str, Any]
) -> Snapshot:
    snap = await get(session, ctx, snapshot_id)
    name = text(body, "name", "display_name")
    if name is not None:
        snap.name = name
    description = text(body, "description", "display_description")
    if description is not None:
        snap.description = description
    meta = metadata(body)
    if meta is not None:
        snap.metadata_ = meta
    snap.updated_at = utcnow()
    await session.flush()
    return snap


async def set_metadata(
    session: AsyncSession, ctx: RequestContext, snapshot_id: str, body: Any, *, replace: bool
) -> dict[str, str]:
    """``PUT .../metadata`` replaces the metadata, ``POST`` merges into it (Cinder's
    ``update_snapshot_metadata(delete=...)``); the whole metadata is answered."""
    checks.root(body, "metadata")
    given = checks.string_map(body["metadata"], "metadata")
    snap = await get(session, ctx, snapshot_id)
    snap.metadata_ = given if replace else dict(snap.metadata_ or {}) | given
    snap.updated_at = utcnow()
    await session.flush()
    return dict(snap.metadata_)


async def metadata_item(
    session: AsyncSession, ctx: RequestContext, snapshot_id: str, key: str
) -> dict[str, str]:
    snap = await get(session, ctx, snapshot_id)
    if key not in (snap.metadata_ or {}):
        raise _no_key(snapshot_id, key)
    return {key: snap.metadata_[key]}


async def set_metadata_item(
    session: AsyncSession, ctx: RequestContext, snapshot_id: str, key: str, body: Any
) -> dict[str, str]:
    """``PUT .../metadata/{key}`` with ``{"meta": {key: value}}``: exactly that key."""
    checks.root(body, "meta")
    meta = checks.string_map(body["meta"], "meta", exactly_one=True)
    if key not in meta:
        raise invalid("Request body and URI mismatch")
    snap = await get(session, ctx, snapshot_id)
    snap.metadata_ = dict(snap.metadata_ or {}) | meta
    snap.updated_at = utcnow()
    await session.flush()
    return {key: snap.metadata_[key]}


async def delete_metadata_item(
    session: AsyncSession, ctx: RequestContext, snapshot_id: str, key: str
) -> None:
    snap = await get(session, ctx, snapshot_id)
    if key not in (snap.metadata_ or {}):
        raise _no_key(snapshot_id, key)
    snap.metadata_ = {k: v for k, v in snap.metadata_.items() if k != key}
    snap.updated_at = utcnow()
    await session.flush()


def _no_key(snapshot_id: str, key: str) -> NotFound:
    """Cinder's SnapshotMetadataNotFound."""
    return NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")


async def begin_delete(
    session: AsyncSession, ctx: RequestContext, settings: VolumeSettings, snapshot_id: str
) -> Snapshot:
    snap = await get(session, ctx, snapshot_id)
    await states.move(
        session, snap, "delete", to="deleting", owner=snap.host,
        deadline=timedelta(seconds=settings.task_deadline_s),
    )  # fmt: skip
    return snap


async def reset_status(
    session: AsyncSession, ctx: RequestContext, snapshot_id: str, body: dict[str, Any]
) -> Snapshot:
    if "status" not in body:
        raise checks.required("os-reset_status", body, "status")
    status = checks.status(body["status"], "status", "snapshot_status", states.SNAPSHOT_STATUSES)
    snap = await get(session, ctx, snapshot_id)
    if not ctx.is_admin:
        raise forbidden(
            "Policy doesn't allow volume_extension:snapshot_admin_actions:reset_status "
            "to be performed."
        )
    snap.status = status
    snap.task_owner = None
    snap.task_deadline = None
    snap.updated_at = utcnow()
    await session.flush()
    return snap


async def emit(session: AsyncSession, ctx: RequestContext, snap: Snapshot, action: str) -> None:
    payload: BaseModel = SnapshotPayload(
        id=snap.id,
        project_id=snap.project_id,
        volume_id=snap.volume_id,
        status=snap.status,
        size=snap.size,
    )
    await add_event(
        session, events.SNAPSHOT.format(action=action), payload, project_id=snap.project_id,
        ctx=ctx,
    )  # fmt: skip
