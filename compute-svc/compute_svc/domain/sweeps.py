"""What the sweeper does with servers, and detaches, past their deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import InstanceActionEvent, Server
from ..wiring import Deps
from . import actions, detaching, interfaces, moves, power, servers, shelving, snapshots, volumes
from .deletion import start_delete
from .tasks import fault


def register_sweeps(deps: Deps) -> None:
    """BUILD past its deadline: ERROR with a fault; DELETING: run the delete again; a
    detach still unplugging: rolled back, one releasing: finished (``domain.detaching``)."""
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
        await actions.finish(session, row.id, actions.CREATE, fault=row.fault["message"])

    async def delete_expired(session: AsyncSession, row: Server) -> None:
        row.task_deadline = datetime.now(UTC) + timedelta(seconds=deps.settings.delete_timeout_s)
        row.task_owner = deps.instance
        server = Server(id=row.id, project_id=row.project_id, user_id=row.user_id)
        start_delete(deps, server)

    async def reboot_expired(session: AsyncSession, row: Server) -> None:
        row.vm_state = "active"
        row.task_state = None
        why = "Reboot of the server did not finish within its deadline."
        await actions.finish(session, row.id, actions.REBOOT, fault=why)

    async def detach_expired(session: AsyncSession, row: InstanceActionEvent) -> None:
        # Taken from its run (dead, or stuck): unplugging is rolled back, releasing finished.
        server = await session.get(Server, row.server_id)
        if server is None:  # its delete let the device go
            await actions.end(session, row.id, expected=(row.status,), fault="Server deleted.")
            return
        session.expunge(server)
        job = detaching.take_over(deps, row)
        name, rollback = row.event, row.status == detaching.UNPLUGGING

        def run(_session: Any) -> None:  # once the event is the new run's for everyone
            sweeper_detach(deps, server, job, name, rollback=rollback)

        orm_event.listen(session.sync_session, "after_commit", run, once=True)

    sweeper.register(Server, "BUILD", on_expire=build_expired, to="ERROR")
    sweeper.register(Server, "DELETING", on_expire=delete_expired)
    sweeper.register(Server, "REBOOT", on_expire=reboot_expired, to="ACTIVE")
    sweeper.register(Server, "HARD_REBOOT", on_expire=reboot_expired, to="ACTIVE")

    async def task_expired(session: AsyncSession, row: Server) -> None:
        # A task with no status of its own: a power action's, a snapshot's, a shelve's.
        if row.task_state in snapshots.TASKS:
            await snapshots.expired(deps, session, row)
        elif row.task_state in shelving.TASKS:
            await shelving.expired(deps, session, row)
        else:
            await power.expired(session, row)

    # stop, start, pause, suspend, createImage... under way: no status of their own
    for source in sorted({*power.SOURCES, *snapshots.FROM, *shelving.FROM}):
        sweeper.register(Server, source, on_expire=task_expired)

    async def shelved_expired(session: AsyncSession, row: Server) -> None:
        await shelving.expired(deps, session, row)

    # A SHELVED row's deadline with no task is its offload timer.
    for shelved in (shelving.SHELVED, shelving.OFFLOADED):
        sweeper.register(Server, shelved, on_expire=shelved_expired)
    for moving in moves.MOVING:
        sweeper.register(Server, moving, on_expire=moves.expired, to="ERROR")
    sweeper.register(InstanceActionEvent, detaching.UNPLUGGING, on_expire=detach_expired)
    sweeper.register(InstanceActionEvent, detaching.RELEASING, on_expire=detach_expired)


def sweeper_detach(
    deps: Deps, server: Server, job: detaching.Job, event: str, *, rollback: bool
) -> None:
    """Finish an expired detach in the background, as the run that took it over."""

    async def work() -> None:
        if event == actions.EVENTS[actions.DETACH_VOLUME]:
            if rollback:
                why = f"Detach of volume {job.target} did not finish within its deadline."
                await volumes.roll_back(deps, server, job.target, job, why)
            else:
                await volumes.release(deps, server, job.target, job)
        elif rollback:
            why = f"Detach of port {job.target} did not finish within its deadline."
            await interfaces.roll_back(deps, server, job, why)
        else:
            await interfaces.release(deps, server, job)

    detaching.start(deps, server, job, work())
