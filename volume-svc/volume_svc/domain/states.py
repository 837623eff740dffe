"""The volume and snapshot status machines: which action may start from which status.

Every move is a compare-and-swap (``common_rpc.chassis.sweeper.transition``), so two
requests racing on one volume cannot both win; the loser gets the same 400 as a request
that came too late.

    await move(session, volume, "reserve", to="reserved", deadline=timedelta(minutes=5))
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.chassis.sweeper import transition

from ..db.models import Backup, Snapshot, Volume
from .errors import invalid_state

VOLUME_STATUSES = (
    "creating",
    "available",
    "reserved",
    "attaching",
    "in-use",
    "detaching",
    "deleting",
    "error",
    "error_deleting",
    "extending",
    "error_extending",
    "awaiting-transfer",
    "backing-up",
    "restoring-backup",
    "error_restoring",
    "uploading",
)
SNAPSHOT_STATUSES = ("creating", "available", "deleting", "error", "error_deleting")

# action -> the statuses it may start from
VOLUME_FROM: dict[str, tuple[str, ...]] = {
    "create_done": ("creating",),
    "delete": ("available", "error", "error_deleting", "error_extending", "error_restoring"),
    "delete_failed": ("deleting",),
    "extend": ("available",),
    "extend_done": ("extending",),
    "snapshot": ("available",),
    "snapshot_forced": ("available", "in-use"),
    "clone": ("available", "in-use"),
    "reserve": ("available",),
    "initialize_connection": ("reserved", "attaching", "in-use"),
    "attach": ("reserved", "attaching"),
    "begin_detaching": ("in-use",),
    "detach": ("detaching", "in-use"),
    "roll_detaching": ("detaching",),
    "unreserve": ("reserved", "attaching"),
    # offered to another project (domain.transfers), then accepted or withdrawn
    "transfer": ("available",),
    "transfer_end": ("awaiting-transfer",),
    # backed up (domain.backups): an attached volume stays in-use meanwhile
    "backup": ("available",),
    "backup_forced": ("available", "in-use"),
    "backup_done": ("backing-up",),
    # a backup restored over it, or into it when the restore made it
    "restore": ("available",),
    "restore_done": ("restoring-backup",),
    # copied into a new image (os-volume_upload_image); an attached one stays in-use
    "upload": ("available",),
}
BACKUP_STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "restoring")
BACKUP_FROM: dict[str, tuple[str, ...]] = {
    "create_done": ("creating",),
    "delete": ("available", "error", "error_deleting"),
    "delete_failed": ("deleting",),
    "restore": ("available",),
    "restore_done": ("restoring",),
}
SNAPSHOT_FROM: dict[str, tuple[str, ...]] = {
    "create_done": ("creating",),
    "delete": ("available", "error", "error_deleting"),
    "delete_failed": ("deleting",),
    "source": ("available",),
}


TABLES: dict[type[Any], dict[str, tuple[str, ...]]] = {
    Volume: VOLUME_FROM,
    Snapshot: SNAPSHOT_FROM,
    Backup: BACKUP_FROM,
}


def check(row: Any, action: str) -> None:
    """400 unless ``row`` may start ``action`` from its current status."""
    if row.status not in TABLES[type(row)][action]:
        raise invalid_state(type(row).__name__, row.id, row.status, action.replace("_", " "))


async def move(
    session: AsyncSession,
    row: Volume | Snapshot | Backup,
    action: str,
    *,
    to: str,
    owner: str | None = None,
    deadline: timedelta | None = None,
    **values: Any,
) -> None:
    """Swap ``row`` to ``to`` if it still is in a status ``action`` starts from."""
    check(row, action)
    model = type(row)
    table = TABLES[model]
    won = await transition(
        session,
        model,
        row.id,
        expected=table[action],
        to=to,
        owner=owner,
        deadline=deadline,
        **values,
    )
    if not won:
        await session.refresh(row)
        check(row, action)  # raises with the status that beat us
        raise invalid_state(model.__name__, row.id, row.status, action)
    await session.refresh(row)
