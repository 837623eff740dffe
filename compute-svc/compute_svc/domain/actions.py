"""Nova's instance actions: what each request asked of a server, and how its steps went.

The request that starts an operation records its action (``record``, in the transaction
that moves the server or its device), with the operation's event running; the flow doing
the work ends the event (``finish``/``end``): ``Success``, or ``Error`` with the reason,
which also becomes the action's ``message``, the fault a user reads in
``GET /v2.1/servers/{id}/os-instance-actions/{request_id}``.

    await actions.record(session, server, actions.REBOOT)      # the API's transaction
    await actions.finish(session, server.id, actions.REBOOT)   # the flow, when done

An action lives as long as its server (a delete removes them: at microversion 2.1 the
actions of a deleted server are not shown).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import current_context

from ..db.models import InstanceAction, InstanceActionEvent, Server

CREATE, DELETE, REBOOT, STOP, START = "create", "delete", "reboot", "stop", "start"
ATTACH_VOLUME, DETACH_VOLUME = "attach_volume", "detach_volume"
ATTACH_INTERFACE, DETACH_INTERFACE = "attach_interface", "detach_interface"
EVACUATE, MIGRATE = "evacuate", "migrate"
CONFIRM_RESIZE, REVERT_RESIZE = "confirmResize", "revertResize"
PAUSE, UNPAUSE, SUSPEND, RESUME = "pause", "unpause", "suspend", "resume"
RESIZE, REBUILD = "resize", "rebuild"
CREATE_IMAGE = "createImage"
SHELVE, SHELVE_OFFLOAD, UNSHELVE = "shelve", "shelveOffload", "unshelve"

# Nova's event of each action: "compute_" and the compute manager's method.
EVENTS = {
    CREATE: "compute__do_build_and_run_instance",
    DELETE: "compute_terminate_instance",
    REBOOT: "compute_reboot_instance",
    STOP: "compute_stop_instance",
    START: "compute_start_instance",
    ATTACH_VOLUME: "compute_attach_volume",
    DETACH_VOLUME: "compute_detach_volume",
    ATTACH_INTERFACE: "compute_attach_interface",
    DETACH_INTERFACE: "compute_detach_interface",
    EVACUATE: "compute_rebuild_instance",
    MIGRATE: "compute_prep_resize",
    CONFIRM_RESIZE: "compute_confirm_resize",
    REVERT_RESIZE: "compute_revert_resize",
    RESIZE: "compute_prep_resize",
    REBUILD: "compute_rebuild_instance",
    PAUSE: "compute_pause_instance",
    UNPAUSE: "compute_unpause_instance",
    SUSPEND: "compute_suspend_instance",
    RESUME: "compute_resume_instance",
    CREATE_IMAGE: "compute_snapshot_instance",
    SHELVE: "compute_shelve_instance",
    SHELVE_OFFLOAD: "compute_shelve_offload_instance",
    UNSHELVE: "compute_unshelve_instance",
}
RUNNING, FINISHED = "running", "finished"
SUCCESS, ERROR = "Success", "Error"


def _now() -> datetime:
    return datetime.now(UTC)


async def record(
    session: AsyncSession,
    server: Server,
    action: str,
    *,
    status: str = RUNNING,
    owner: str | None = None,
    deadline_s: float | None = None,
    target: str | None = None,
) -> InstanceActionEvent:
    """The action of the current request on ``server`` and its event, started now.

    ``status``, ``owner`` and ``deadline_s`` make the event a transitional record the
    sweeper watches (a detach's); ``target`` is the device it acts on.
    """
    ctx = current_context()
    started = _now()
    row = InstanceAction(
        server_id=server.id,
        action=action,
        request_id=ctx.request_id,
        user_id=ctx.user_id or server.user_id or "",
        project_id=ctx.project_id or server.project_id,
        start_time=started,
        updated_at=started,
    )
    session.add(row)
    await session.flush()
    event = InstanceActionEvent(
        action_id=row.id,
        server_id=server.id,
        event=EVENTS[action],
        target=target,
        start_time=started,
        status=status,
        task_owner=owner,
        task_deadline=started + timedelta(seconds=deadline_s) if deadline_s else None,
    )
    session.add(event)
    await session.flush()
    return event


async def end(
    session: AsyncSession,
    event_id: int,
    *,
    fault: str | None = None,
    expected: tuple[str, ...] = (RUNNING,),
    owner: str | None = None,
) -> bool:
    """End the event if it still is in one of ``expected`` (and ``owner``'s, if given):
    ``Success``, or ``Error`` with ``fault`` as its details and its action's message.
    False when another run ended or took it (compare-and-swap)."""
    query = update(InstanceActionEvent).where(
        InstanceActionEvent.id == event_id, InstanceActionEvent.status.in_(expected)
    )
    if owner is not None:
        query = query.where(InstanceActionEvent.task_owner == owner)
    moved = await session.execute(
        query.values(
            status=FINISHED,
            finish_time=_now(),
            result=ERROR if fault else SUCCESS,
            details=fault,
            task_owner=None,
            task_deadline=None,
        ).execution_options(synchronize_session=False)
    )
    if int(getattr(moved, "rowcount", 0) or 0) != 1:
        return False
    action_id = select(InstanceActionEvent.action_id).where(InstanceActionEvent.id == event_id)
    values: dict[str, Any] = {"updated_at": _now()}
    if fault:
        values["message"] = fault
    await session.execute(
        update(InstanceAction)
        .where(InstanceAction.id == action_id.scalar_subquery())
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return True


async def finish(
    session: AsyncSession, server_id: str, action: str, *, fault: str | None = None
) -> bool:
    """End the running event of ``action`` on the server that this request began (its
    flows keep the request id), else the newest running one (the sweeper has none)."""
    rows = (
        await session.execute(
            select(InstanceActionEvent.id, InstanceAction.request_id)
            .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
            .where(
                InstanceActionEvent.server_id == server_id,
                InstanceActionEvent.event == EVENTS[action],
                InstanceActionEvent.status == RUNNING,
            )
            .order_by(InstanceActionEvent.id.desc())
        )
    ).all()
    if not rows:
        return False
    request_id = current_context().request_id
    event_id = next((r.id for r in rows if r.request_id == request_id), rows[0].id)
    return await end(session, event_id, fault=fault)


async def forget_action(session: AsyncSession, event_id: int) -> None:
    """An action refused before it began (the request answers an error): no trace."""
    event = await session.get(InstanceActionEvent, event_id)
    if event is None:
        return
    await session.execute(
        delete(InstanceActionEvent).where(InstanceActionEvent.action_id == event.action_id)
    )
    await session.execute(delete(InstanceAction).where(InstanceAction.id == event.action_id))


async def forget(session: AsyncSession, server_id: str) -> None:
    """A deleted server's actions and events go with it."""
    await session.execute(
        delete(InstanceActionEvent).where(InstanceActionEvent.server_id == server_id)
    )
    await session.execute(delete(InstanceAction).where(InstanceAction.server_id == server_id))


# ---------------------------------------------------------------- the API's views


async def listed(session: AsyncSession, server_id: str) -> list[InstanceAction]:
    """The server's actions, newest first (Nova's order)."""
    query = (
        select(InstanceAction)
        .where(InstanceAction.server_id == server_id)
        .order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())
    )
    return list(await session.scalars(query))


async def by_request(
    session: AsyncSession, server_id: str, request_id: str
) -> tuple[InstanceAction, list[InstanceActionEvent]] | None:
    """The action a request made on the server, with its events newest first."""
    action = (
        await session.scalars(
            select(InstanceAction)
            .where(InstanceAction.server_id == server_id, InstanceAction.request_id == request_id)
            .order_by(InstanceAction.id.desc())
            .limit(1)
        )
    ).first()
    if action is None:
        return None
    events = await session.scalars(
        select(InstanceActionEvent)
        .where(InstanceActionEvent.action_id == action.id)
        .order_by(InstanceActionEvent.id.desc())
    )
    return action, list(events)


def _time(moment: datetime | None) -> str | None:
    """Nova's timestamps here: ``2018-04-25T01:26:36.000000`` (UTC, no zone)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if moment else None


def view(action: InstanceAction) -> dict[str, Any]:
    return {
        "action": action.action,
        "instance_uuid": action.server_id,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": _time(action.start_time),
        "message": action.message,
    }


def event_view(event: InstanceActionEvent, *, admin: bool) -> dict[str, Any]:
    """An event as Nova 2.51 shows it to the server's owner (an action's user must be
    able to read why it failed: the action's ``message``); admins also get
    ``traceback``, which holds the fault's text here (no stack is kept)."""
    out = {
        "event": event.event,
        "start_time": _time(event.start_time),
        "finish_time": _time(event.finish_time),
        "result": event.result,
    }
    if admin:
        out["traceback"] = event.details
    return out
