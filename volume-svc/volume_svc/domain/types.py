"""Volume types: a default one always exists; admins add, rename and delete more, and set
their extra specs (kept and shown; no backend choice reads them yet).

Extra specs are the admin's: other callers see only the keys Cinder shows users
(``USER_VISIBLE_EXTRA_SPECS``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import Conflict, NotFound

from ..db.models import Volume, VolumeType
from ..settings import VolumeSettings
from . import checks
from .common import new_id, text
from .errors import forbidden, invalid, not_found

# Cinder's policies.type_extra_specs.USER_VISIBLE_EXTRA_SPECS.
USER_VISIBLE_EXTRA_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")
_UPDATABLE = ("name", "description", "is_public")


def visible_specs(vt: VolumeType, ctx: RequestContext) -> dict[str, Any]:
    specs = dict(vt.extra_specs or {})
    if ctx.is_admin:
        return specs
    return {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}


def view(vt: VolumeType, ctx: RequestContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": vt.id,
        "name": vt.name,
        "description": vt.description,
        "is_public": vt.is_public,
        "os-volume-type-access:is_public": vt.is_public,
        "extra_specs": visible_specs(vt, ctx),
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


async def update(
    session: AsyncSession,
    ctx: RequestContext,
    settings: VolumeSettings,
    ref: str,
    body: dict[str, Any],
) -> VolumeType:
    """Cinder's type update: ``name``, ``description`` and ``is_public``, at least one.

    The default type keeps its name: it is found by the name in the settings.
    """
    extra = [k for k in body if k not in _UPDATABLE]
    if extra:
        raise checks.additional("volume_type", body, extra)
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 255):
        raise checks.field_error("name", name, f"{name!r} is not a valid name")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 255):
        raise checks.field_error("description", description, f"{description!r} is too long")
    public = body.get("is_public")
    is_public = None if public is None else checks.boolean(public, "is_public")
    if not ctx.is_admin:
        raise forbidden("Policy doesn't allow volume_extension:types_manage to be performed.")
    if name is not None and not name.strip():
        raise invalid("Volume type name can not be empty.")
    if name is None and description is None and is_public is None:
        raise invalid("Specify volume type name, description, is_public or a combination thereof.")
    vt = await get(session, ctx, ref)
    if name is not None and name != vt.name:
        if vt.name == settings.default_volume_type:
            raise invalid(f"The default volume type {vt.name} can not be renamed.")
        taken = select(exists().where(VolumeType.name == name, VolumeType.id != vt.id))
        if await session.scalar(taken):
            raise Conflict(f"Volume Type {name} already exists.")
        vt.name = name
    if description is not None:
        vt.description = description
    if is_public is not None:
        vt.is_public = is_public
    try:
        await session.flush()
    except IntegrityError:
        # Renamed meanwhile by another request to the same name.
        raise Conflict(f"Volume Type {name} already exists.") from None
    return vt


async def extra_specs(session: AsyncSession, ctx: RequestContext, ref: str) -> dict[str, Any]:
    return visible_specs(await get(session, ctx, ref), ctx)


async def extra_spec(
    session: AsyncSession, ctx: RequestContext, ref: str, key: str
) -> dict[str, Any]:
    specs = await extra_specs(session, ctx, ref)
    if key not in specs:
        raise _no_spec(ref, key)
    return {key: specs[key]}


async def set_extra_specs(
    session: AsyncSession, ctx: RequestContext, ref: str, specs: dict[str, Any]
) -> None:
    """Add or change the given keys (admins; not while volumes use the type, as Cinder)."""
    vt = await _changeable(session, ctx, ref)
    vt.extra_specs = dict(vt.extra_specs or {}) | specs
    await session.flush()


async def delete_extra_spec(session: AsyncSession, ctx: RequestContext, ref: str, key: str) -> None:
    vt = await _changeable(session, ctx, ref)
    if key not in (vt.extra_specs or {}):
        raise _no_spec(vt.id, key)
    vt.extra_specs = {k: v for k, v in vt.extra_specs.items() if k != key}
    await session.flush()


async def _changeable(session: AsyncSession, ctx: RequestContext, ref: str) -> VolumeType:
    if not ctx.is_admin:
        raise forbidden("Policy doesn't allow volume_extension:types_extra_specs to be performed.")
    vt = await get(session, ctx, ref)
    if await session.scalar(select(exists().where(Volume.volume_type_id == vt.id))):
        raise invalid("Volume Type is currently in use.")
    return vt


def _no_spec(type_id: str, key: str) -> NotFound:
    """Cinder's VolumeTypeExtraSpecsNotFound."""
    return NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
