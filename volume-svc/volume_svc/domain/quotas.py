"""Per-project quotas (volumes, gigabytes, snapshots, backups, backup_gigabytes), reserved
with the resource's row.

The engine is common-rpc's (``common_rpc.quotas``) over this service's own tables:
``reserve`` runs inside the transaction that inserts the volume or snapshot, one
conditional UPDATE that takes the units or raises Cinder's 413; ``release`` gives them
back in the transaction that deletes it.

    await reserve(session, settings, "p1", {"volumes": 1, "gigabytes": 10})
    await release(session, "p1", {"volumes": 1, "gigabytes": 10})
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.quotas import Quotas

from ..db.models import QuotaLimit, QuotaUsage
from ..settings import VolumeSettings
from .errors import invalid, over_quota

RESOURCES = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes")

QUOTAS = Quotas(QuotaUsage, QuotaLimit, RESOURCES, over_limit=over_quota, invalid=invalid)


def defaults(settings: VolumeSettings) -> dict[str, int]:
    return {
        "volumes": settings.quota_volumes,
        "gigabytes": settings.quota_gigabytes,
        "snapshots": settings.quota_snapshots,
        "backups": settings.quota_backups,
        "backup_gigabytes": settings.quota_backup_gigabytes,
    }


async def limits(session: AsyncSession, settings: VolumeSettings, project: str) -> dict[str, int]:
    return await QUOTAS.limits(session, project, defaults(settings))


async def usage(session: AsyncSession, project: str) -> dict[str, int]:
    return await QUOTAS.usage(session, project)


async def reserve(
    session: AsyncSession, settings: VolumeSettings, project: str, deltas: dict[str, int]
) -> None:
    """Take ``deltas`` units or raise 413 naming the first resource over its limit."""
    await QUOTAS.reserve(session, project, deltas, defaults(settings))


async def release(session: AsyncSession, project: str, deltas: dict[str, int]) -> None:
    await QUOTAS.release(session, project, deltas)


async def set_limits(session: AsyncSession, project: str, values: dict[str, object]) -> None:
    # Cinder ignores quota keys it does not track for this backend.
    await QUOTAS.set_limits(session, project, values)


async def clear_limits(session: AsyncSession, project: str) -> None:
    await QUOTAS.clear_limits(session, project)
