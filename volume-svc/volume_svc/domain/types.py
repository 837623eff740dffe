"""Volume types: a default one always exists; admins add more (no backend choice yet)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext

from ..db.models import Volume, VolumeType
from ..settings import VolumeSettings
from .common import new_id, text
from .errors import forbidden, invalid, not_found


def view(vt: VolumeType, ctx: RequestContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": vt.id,
        "name": vt.name,
        "description": vt.description,
        "is_public": vt.is_public,
        "os-volume-type-access:is_public": vt.is_public,
        "extra_specs": dict(vt.extra_specs or {}),
        "qos_specs_id": None,
    }
    return out


async def ensure_default(session: AsyncSession, settings: VolumeSettings) -> VolumeType:
    found = await session.scalar(
        select(VolumeType).where(VolumeType.name == settings.default_volume_type)
    )
    if found is not None:
        return found
    vt = VolumeType(
        id=new_id(), name=settings.default_volume_type, description="Default Volume Type",
        is_public=True, extra_specs={},
    )  # fmt: skip
    try:
        async with session.begin_nested():
            session.add(vt)
        return vt
    except IntegrityError:
        # A parallel first request made it: use theirs.
        return (
            await session.scalars(
                select(VolumeType).where(VolumeType.name == settings.default_volume_type)
            )
        ).one()


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[VolumeType]:
    query = select(VolumeType).order_by(VolumeType.created_at, VolumeType.name)
    if not ctx.is_admin:
        query = query.where(VolumeType.is_public)
    return list(await session.scalars(query))


async def get(session: AsyncSession, ctx: RequestContext, ref: str) -> VolumeType:
    """By id or by name (clients send either as ``volume_type``)."""
    query = select(VolumeType).where(or_(VolumeType.id == ref, VolumeType.name == ref))
    if not ctx.is_admin:
        query = query.where(VolumeType.is_public)
    vt = (await session.scalars(query)).first()
    if vt is None:
        raise not_found("Volume type", ref)
    return vt


async def create(session: AsyncSession, ctx: RequestContext, body: dict[str, Any]) -> VolumeType:
    if not ctx.is_admin:
        raise forbidden()
    name = text(body, "name")
    if not name:
        raise invalid("Volume type name can not be empty.")
    if await session.scalar(select(exists().where(VolumeType.name == name))):
        raise invalid(f"Volume Type {name} already exists.")
    specs = body.get("extra_specs") or {}
    if not isinstance(specs, dict):
        raise invalid("extra_specs must be an object.")
    vt = VolumeType(
        id=new_id(),
        name=name,
        description=text(body, "description") or "",
        is_public=bool(body.get("os-volume-type-access:is_public", body.get("is_public", True))),
        extra_specs={str(k): str(v) for k, v in specs.items()},
    )
    session.add(vt)
    await session.flush()
    return vt


async def remove(
    session: AsyncSession, ctx: RequestContext, settings: VolumeSettings, ref: str
) -> None:
    if not ctx.is_admin:
        raise forbidden()
    vt = await get(session, ctx, ref)
    if vt.name == settings.default_volume_type:
        raise invalid("The default volume type can not be deleted.")
    if await session.scalar(select(exists().where(Volume.volume_type_id == vt.id))):
        raise invalid(f"Target volume type {vt.id} is still in use.")
    await session.delete(vt)
