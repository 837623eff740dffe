"""What the sweeper does with servers past their deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Server
from ..wiring import Deps
from . import servers
from .deletion import start_delete
from .tasks import fault


def register_sweeps(deps: Deps) -> None:
    """BUILD past its deadline: ERROR with a fault; DELETING: run the delete again."""
    sweeper = deps.runtime.sweeper
    assert sweeper is not None

    async def build_expired(session: AsyncSession, row: Server) -> None:
        # The boot task, if it still runs, finds the row moved on and releases what it took.
        row.status = "ERROR"
        row.vm_state = "error"
        row.task_state = None
        row.task_owner = None
        row.task_deadline = None
        row.fault = fault("Build of the server did not finish within its deadline.")
        await servers.emit(session, row, "create", "end")

    async def delete_expired(session: AsyncSession, row: Server) -> None:
        row.task_deadline = datetime.now(UTC) + timedelta(seconds=deps.settings.delete_timeout_s)
        row.task_owner = deps.instance
        server = Server(id=row.id, project_id=row.project_id, user_id=row.user_id)
        start_delete(deps, server)

    async def reboot_expired(session: AsyncSession, row: Server) -> None:
        row.vm_state = "active"
        row.task_state = None

    sweeper.register(Server, "BUILD", on_expire=build_expired, to="ERROR")
    sweeper.register(Server, "DELETING", on_expire=delete_expired)
    sweeper.register(Server, "REBOOT", on_expire=reboot_expired, to="ACTIVE")
    sweeper.register(Server, "HARD_REBOOT", on_expire=reboot_expired, to="ACTIVE")
