"""Block Storage's attachments API (Cinder 3.27+), on the same rows and status machine as
compute's attach protocol (``domain.attach``), so the two never disagree:

    create(volume_uuid, instance_uuid)   available -> reserved     attachment "reserved"
    update(connector)                    reserved  -> attaching    export made, "attaching"
    complete (os-complete)               attaching -> in-use       "attached"
    delete                               any of those -> available export removed, row gone

An attachment the API made has ``origin`` "api"; compute's (made by its ``attach`` over
RPC) are listed and shown here too, but only compute detaches them: deleting one here
would take the disk from under a running guest. A reservation does not expire (as in
Cinder); a connection not completed within ``attach.ATTACH_DEADLINE`` is swept back to
``available`` with its attachment, as compute's are.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.chassis.sweeper import transition
from common_rpc.context import RequestContext
from common_rpc.contracts.volume import Connector

from .. import events
from ..db.models import Attachment, Volume, utcnow
from ..wiring import Deps
from . import attach, checks, states, volumes
from .common import iso, new_id, owns, transaction
from .errors import invalid, not_found

_CREATE_KEYS = ("volume_uuid", "instance_uuid", "connector", "mode")
MODES = ("rw", "ro")


def summary(att: Attachment) -> dict[str, Any]:
    return {
        "id": att.id,
        "status": att.status,
        "instance": att.server_id or None,
        "volume_id": att.volume_id,
    }


def detail(att: Attachment) -> dict[str, Any]:
    return summary(att) | {
        "attached_at": iso(att.attached_at) if att.status == "attached" else None,
        "detached_at": None,
        "attach_mode": att.attach_mode,
        "connection_info": att.connection_info or None,
    }


async def list_all(
    session: AsyncSession, ctx: RequestContext, all_tenants: bool
) -> list[Attachment]:
    query = (
        select(Attachment)
        .join(Volume, Volume.id == Attachment.volume_id)
        .order_by(Attachment.attached_at.desc(), Attachment.id)
    )
    if not (ctx.is_admin and all_tenants):
        query = query.where(Volume.project_id == ctx.project_id)
    return list(await session.scalars(query))


async def get(session: AsyncSession, ctx: RequestContext, attachment_id: str) -> Attachment:
    """The attachment of a volume the caller may see; 404 for any other."""
    row = (
        await session.execute(
            select(Attachment, Volume.project_id)
            .join(Volume, Volume.id == Attachment.volume_id)
            .where(Attachment.id == attachment_id)
        )
    ).first()
    if row is None or not owns(ctx, row[1]):
        raise not_found("VolumeAttachment", attachment_id)
    return row[0]


def _connector(value: Any) -> Connector:
    if not isinstance(value, dict):
        raise checks.field_error("connector", value, f"{value!r} is not of type 'object'")
    try:
        return Connector.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "connector"
        raise checks.field_error(where, value, first["msg"]) from None


async def create(deps: Deps, ctx: RequestContext, body: dict[str, Any]) -> Attachment:
    """Reserve the volume for an instance; with a connector, connect it at once."""
    extra = [k for k in body if k not in _CREATE_KEYS]
    if extra:
        raise checks.additional("attachment", body, extra)
    if "volume_uuid" not in body:
        raise checks.required("attachment", body, "volume_uuid")
    volume_id = checks.uuid_or_null(body["volume_uuid"], "volume_uuid")
    if volume_id is None:
        raise checks.field_error("volume_uuid", None, "None is not of type 'string'")
    instance = checks.uuid_or_null(body.get("instance_uuid"), "instance_uuid")
    mode = body.get("mode")
    if mode is not None and mode not in MODES:
        raise checks.field_error("mode", mode, f"{mode!r} is not one of {list(MODES)}")
    connector = _connector(body["connector"]) if body.get("connector") else None
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, str(volume_id))
        if vol.status != "available":
            raise invalid(
                f"Invalid volume: Volume {vol.id} status must be available or downloading to "
                f"reserve, but the current status is {vol.status}."
            )
        await states.move(session, vol, "reserve", to="reserved")
        readonly = (vol.admin_metadata or {}).get("readonly") == "True"
        att = Attachment(
            id=new_id(), volume_id=vol.id, server_id=str(instance) if instance else "",
            status="reserved", origin="api", attach_mode=mode or ("ro" if readonly else "rw"),
            attached_at=utcnow(),
        )  # fmt: skip
        session.add(att)
        await session.flush()
        attachment_id = att.id
    if connector is not None:
        return await connect(deps, ctx, attachment_id, connector)
    return await _reread(deps, ctx, attachment_id)


async def update(deps: Deps, ctx: RequestContext, attachment_id: str, body: Any) -> Attachment:
    """``PUT`` with the connector: export the volume to it, keep the connection info."""
    if not isinstance(body, dict) or "connector" not in body:
        raise checks.required("attachment", body, "connector")
    extra = [k for k in body if k != "connector"]
    if extra:
        raise checks.additional("attachment", body, extra)
    return await connect(deps, ctx, attachment_id, _connector(body["connector"]))


async def connect(
    deps: Deps, ctx: RequestContext, attachment_id: str, connector: Connector
) -> Attachment:
    async with transaction(deps.sessions) as session:
        att = await _own(session, ctx, attachment_id)
        if att.status not in ("reserved", "attaching"):
            raise invalid(f"Attachment {att.id} is {att.status}; its connector cannot change.")
        volume_id = att.volume_id
    # The same export step compute's initialize_connection takes (reserved -> attaching).
    info = await attach.initialize_connection(deps, ctx, volume_id, connector)
    async with transaction(deps.sessions) as session:
        att = await _own(session, ctx, attachment_id)
        att.status = "attaching"
        att.host_name = connector.host or ""
        att.connector = connector.model_dump(include={"initiator", "host", "ip"}, exclude_none=True)
        att.connection_info = info.model_dump(mode="json")
        await session.flush()
    return await _reread(deps, ctx, attachment_id)


async def complete(deps: Deps, ctx: RequestContext, attachment_id: str) -> None:
    """``os-complete``: the host is connected; the volume is ``in-use``."""
    async with transaction(deps.sessions) as session:
        att = await _own(session, ctx, attachment_id)
        if att.status == "attached":
            return
        if att.status != "attaching":
            raise invalid(f"Attachment {att.id} has no connection yet; give its connector first.")
        vol = await volumes.get(session, ctx, att.volume_id)
        await states.move(session, vol, "attach", to="in-use")
        att.status = "attached"
        att.attached_at = utcnow()
        await session.flush()
        await session.refresh(vol)
        await volumes.emit(session, ctx, vol, events.ATTACH)


async def remove(deps: Deps, ctx: RequestContext, attachment_id: str) -> None:
    """Remove the export (if any), the attachment, and free the volume."""
    async with transaction(deps.sessions) as session:
        att = await _own(session, ctx, attachment_id)
        vol = await volumes.get(session, ctx, att.volume_id)
        host, exported, volume_id = vol.host, vol.export is not None, vol.id
    if exported:
        await attach.forget_export(deps, volume_id, host)
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        was_attached = vol.status == "in-use"
        await session.execute(delete(Attachment).where(Attachment.id == attachment_id))
        await transition(
            session, Volume, volume_id, expected=("reserved", "attaching", "in-use"),
            to="available", updated_at=utcnow(),
        )  # fmt: skip
        await session.refresh(vol)
        if was_attached:
            await volumes.emit(session, ctx, vol, events.DETACH)


async def _own(session: AsyncSession, ctx: RequestContext, attachment_id: str) -> Attachment:
    """An attachment this API made; compute's belong to compute's protocol."""
    att = await get(session, ctx, attachment_id)
    if att.origin != "api":
        raise invalid(
            f"Attachment {att.id} was made by the compute service; detach the volume from "
            "its server instead."
        )
    return att


async def _reread(deps: Deps, ctx: RequestContext, attachment_id: str) -> Attachment:
    async with transaction(deps.sessions) as session:
        return await get(session, ctx, attachment_id)
