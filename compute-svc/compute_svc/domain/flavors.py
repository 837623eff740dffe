"""Flavors: admin-made sizes every project boots from; private ones only admins see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext

from ..db.models import Flavor
from .common import flag, integer, name_of, new_id, text, try_insert
from .errors import conflict, forbidden, invalid, not_found

EPHEMERAL = "OS-FLV-EXT-DATA:ephemeral"
IS_PUBLIC = "os-flavor-access:is_public"
DISABLED = "OS-FLV-DISABLED:disabled"


def view(flavor: Flavor) -> dict[str, Any]:
    return {
        "id": flavor.id,
        "name": flavor.name,
        "ram": flavor.ram_mb,
        "vcpus": flavor.vcpus,
        "disk": flavor.disk_gb,
        "swap": flavor.swap_mb or "",
        EPHEMERAL: flavor.ephemeral_gb,
        DISABLED: flavor.disabled,
        IS_PUBLIC: flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor,
    }


def _visible(flavor: Flavor, ctx: RequestContext) -> bool:
    return flavor.is_public or ctx.is_admin


async def get(session: AsyncSession, ctx: RequestContext, flavor_id: str) -> Flavor:
    flavor = await session.get(Flavor, flavor_id)
    if flavor is None or not _visible(flavor, ctx):
        raise not_found("Flavor", flavor_id)
    return flavor


async def list_all(
    session: AsyncSession, ctx: RequestContext, params: dict[str, str]
) -> list[Flavor]:
    """Nova's filter: public ones, unless an admin asks ``is_public=None|false``."""
    rows = list(await session.scalars(select(Flavor).order_by(Flavor.ram_mb, Flavor.id)))
    wanted = str(params.get("is_public", "true")).lower()
    if not ctx.is_admin or wanted in ("true", "1", "yes"):
        rows = [r for r in rows if r.is_public]
    elif wanted in ("false", "0", "no"):
        rows = [r for r in rows if not r.is_public]
    for key, attr in (("minRam", "ram_mb"), ("minDisk", "disk_gb")):
        if key in params:
            low = integer(dict(params), key)
            rows = [r for r in rows if getattr(r, attr) >= low]
    return rows


async def create(session: AsyncSession, ctx: RequestContext, body: dict[str, Any]) -> Flavor:
    if not ctx.is_admin:
        raise forbidden()
    flavor_id = body.get("id")
    if flavor_id in (None, "", "auto"):
        flavor_id = new_id()
    elif not isinstance(flavor_id, str | int) or isinstance(flavor_id, bool):
        raise invalid("Invalid input for field/attribute id.")
    swap = body.get("swap", 0)
    flavor = Flavor(
        id=text({"id": str(flavor_id)}, "id"),
        name=name_of(body),
        vcpus=integer(body, "vcpus", low=1),
        ram_mb=integer(body, "ram", low=1),
        disk_gb=integer(body, "disk", default=0),
        ephemeral_gb=integer(body, EPHEMERAL, default=0),
        swap_mb=integer({"swap": 0 if swap == "" else swap}, "swap"),
        rxtx_factor=_factor(body.get("rxtx_factor", 1.0)),
        is_public=flag(body, IS_PUBLIC, True),
        disabled=False,
    )
    if not await try_insert(session, flavor):
        raise conflict(f"Flavor with name {flavor.name} or id {flavor.id} already exists.")
    return flavor


def _factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise invalid("Invalid input for field/attribute rxtx_factor.")
    return float(value)


async def remove(session: AsyncSession, ctx: RequestContext, flavor_id: str) -> None:
    if not ctx.is_admin:
        raise forbidden()
    flavor = await get(session, ctx, flavor_id)
    # Servers keep their own copy of the sizes, so a flavor in use may go (as in Nova).
    await session.delete(flavor)
