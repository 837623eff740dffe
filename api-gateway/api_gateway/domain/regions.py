"""Catalog regions: a tree of ids (``RegionOne``, its sub-regions), as Keystone keeps them.

    region = await create_region(deps, RegionCreate(description="east"))   # id generated
    await create_region(deps, RegionCreate(), region_id="RegionTwo")       # PUT: id chosen
    await update_region(deps, "RegionTwo", RegionUpdate(parent_region_id="RegionOne"))
    await delete_region(deps, "RegionTwo")     # its sub-regions too; 403 while any has endpoints

A parent must exist (404) and may not make a cycle (400). An id is taken once (409).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Conflict, Forbidden, Invalid, NotFound

from ..db.models import Endpoint, Region, new_id
from ..wiring import Deps
from .common import get_or_404
from .schemas import RegionCreate, RegionUpdate


def region_not_found(region_id: str) -> NotFound:
    return NotFound(f"Could not find region: {region_id}.")


def duplicate_region(region_id: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")


async def _require_parent(session: AsyncSession, parent_id: str | None) -> None:
    if parent_id is not None and await session.get(Region, parent_id) is None:
        raise region_not_found(parent_id)


async def create_region(deps: Deps, spec: RegionCreate, region_id: str | None = None) -> Region:
    """A new region; ``region_id`` is the id a PUT names (the body's must agree)."""
    if region_id is not None and spec.id is not None and spec.id != region_id:
        raise Invalid(f'Conflicting region IDs specified: "{region_id}" != "{spec.id}"')
    region = Region(
        id=region_id or spec.id or new_id(),
        description=spec.description or "",
        parent_region_id=spec.parent_region_id,
    )
    try:
        async with deps.sessions.begin() as session:
            if await session.get(Region, region.id) is not None:
                raise duplicate_region(region.id)
            await _require_parent(session, region.parent_region_id)
            session.add(region)
    except IntegrityError:
        raise duplicate_region(region.id) from None
    return region


async def list_regions(deps: Deps, *, parent_region_id: str | None = None) -> list[Region]:
    query = select(Region).order_by(Region.id)
    if parent_region_id is not None:
        query = query.where(Region.parent_region_id == parent_region_id)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_region(deps: Deps, region_id: str) -> Region:
    async with deps.sessions() as session:
        return await get_or_404(session, Region, region_id, "region")


async def update_region(deps: Deps, region_id: str, spec: RegionUpdate) -> Region:
    changes = spec.model_dump(include=spec.model_fields_set)
    if changes.pop("id", None) not in (None, region_id):
        raise Invalid("Cannot change ID")
    async with deps.sessions.begin() as session:
        region = await get_or_404(session, Region, region_id, "region")
        if "description" in changes:
            region.description = changes["description"] or ""
        if "parent_region_id" in changes:
            parent_id = changes["parent_region_id"]
            await _require_parent(session, parent_id)
            await _refuse_cycle(session, region_id, parent_id)
            region.parent_region_id = parent_id
    return region


async def _refuse_cycle(session: AsyncSession, region_id: str, parent_id: str | None) -> None:
    """Walk up from the new parent: meeting the region itself would make a cycle."""
    at = parent_id
    while at is not None:
        if at == region_id:
            raise Invalid(
                f"The specified parent region {parent_id} would create a circular region hierarchy."
            )
        at = await session.scalar(select(Region.parent_region_id).where(Region.id == at))


async def delete_region(deps: Deps, region_id: str) -> None:
    """Delete a region and its sub-regions, unless one of them has endpoints (403)."""
    async with deps.sessions.begin() as session:
        await get_or_404(session, Region, region_id, "region")
        subtree = await _subtree(session, region_id)
        used = await session.scalar(
            select(Endpoint.id).where(Endpoint.region_id.in_(subtree)).limit(1)
        )
        if used is not None:
            raise Forbidden(
                f"Unable to delete region {region_id} because it or its child regions have "
                "associated endpoints."
            )
        # Sub-regions go by ON DELETE CASCADE.
        await session.execute(delete(Region).where(Region.id == region_id))


async def _subtree(session: AsyncSession, region_id: str) -> list[str]:
    found, frontier = [region_id], [region_id]
    while frontier:
        children = (
            await session.scalars(select(Region.id).where(Region.parent_region_id.in_(frontier)))
        ).all()
        frontier = [child for child in children if child not in found]
        found += frontier
    return found
