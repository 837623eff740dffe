"""Per-project quotas (volumes, gigabytes, snapshots), reserved with the resource's row.

``reserve`` runs inside the transaction that inserts the volume or snapshot: a
conditional ``UPDATE quota_usages SET in_use = in_use + n WHERE in_use + n <= limit``
either takes the units or changes nothing, so parallel creates cannot overshoot (the row
lock on PostgreSQL, the write lock on SQLite). Releasing is the same UPDATE, negative.

    await reserve(session, settings, "p1", {"volumes": 1, "gigabytes": 10})
    await release(session, "p1", {"volumes": 1, "gigabytes": 10})
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import QuotaLimit, QuotaUsage
from ..settings import VolumeSettings
from .errors import invalid, over_quota

RESOURCES = ("volumes", "gigabytes", "snapshots")


def defaults(settings: VolumeSettings) -> dict[str, int]:
    return {
        "volumes": settings.quota_volumes,
        "gigabytes": settings.quota_gigabytes,
        "snapshots": settings.quota_snapshots,
    }


async def limits(session: AsyncSession, settings: VolumeSettings, project: str) -> dict[str, int]:
    out = defaults(settings)
    rows = await session.scalars(select(QuotaLimit).where(QuotaLimit.project_id == project))
    out |= {row.resource: row.hard_limit for row in rows}
    return out


async def usage(session: AsyncSession, project: str) -> dict[str, int]:
    out = dict.fromkeys(RESOURCES, 0)
    rows = await session.scalars(select(QuotaUsage).where(QuotaUsage.project_id == project))
    out |= {row.resource: row.in_use for row in rows}
    return out


async def _ensure_row(session: AsyncSession, project: str, resource: str) -> None:
    exists = await session.get(QuotaUsage, (project, resource))
    if exists is not None:
        return
    try:
        async with session.begin_nested():
            session.add(QuotaUsage(project_id=project, resource=resource, in_use=0))
    except IntegrityError:
        pass  # a parallel first reservation inserted it


async def reserve(
    session: AsyncSession, settings: VolumeSettings, project: str, deltas: dict[str, int]
) -> None:
    """Take ``deltas`` units or raise 413 naming the first resource over its limit."""
    hard = await limits(session, settings, project)
    for resource, amount in deltas.items():
        if amount <= 0:
            continue
        await _ensure_row(session, project, resource)
        query = (
            update(QuotaUsage)
            .where(QuotaUsage.project_id == project, QuotaUsage.resource == resource)
            .values(in_use=QuotaUsage.in_use + amount)
        )
        if hard[resource] >= 0:
            query = query.where(QuotaUsage.in_use + amount <= hard[resource])
        result = await session.execute(query.execution_options(synchronize_session=False))
        if not getattr(result, "rowcount", 0):
            held = (await usage(session, project))[resource]
            raise over_quota(resource, amount, held, hard[resource])


async def release(session: AsyncSession, project: str, deltas: dict[str, int]) -> None:
    for resource, amount in deltas.items():
        if amount <= 0:
            continue
        await session.execute(
            update(QuotaUsage)
            .where(QuotaUsage.project_id == project, QuotaUsage.resource == resource)
            .values(in_use=QuotaUsage.in_use - amount)
            .execution_options(synchronize_session=False)
        )


async def set_limits(session: AsyncSession, project: str, values: dict[str, object]) -> None:
    for resource, value in values.items():
        if resource not in RESOURCES:
            continue  # Cinder ignores quota keys it does not track for this backend
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise invalid(f"Invalid quota value for {resource}: must be an integer >= -1.")
        row = await session.get(QuotaLimit, (project, resource))
        if row is None:
            session.add(QuotaLimit(project_id=project, resource=resource, hard_limit=value))
        else:
            row.hard_limit = value
    await session.flush()


async def clear_limits(session: AsyncSession, project: str) -> None:
    await session.execute(delete(QuotaLimit).where(QuotaLimit.project_id == project))
