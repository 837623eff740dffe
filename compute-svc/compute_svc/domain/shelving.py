"""``shelve``, ``shelveOffload`` and ``unshelve``, as Nova's.

shelve (ACTIVE, SHUTOFF, PAUSED or SUSPENDED): the guest stopped, its root disk saved
into a new image ``<name>-shelved`` (``domain.snapshots``), SHELVED; then offloaded
after ``shelved_offload_time`` seconds (Nova's option; 0, the default: at once; -1:
never). Offload (``shelveOffload`` for an admin, or the timer): the domain and its files
gone from the host, the host's claim given back, SHELVED_OFFLOADED on no host. unshelve:
a SHELVED server is started where it is; a SHELVED_OFFLOADED one is scheduled again
(its zone kept), its ports bound and volumes exported there, and spawned from the
shelved image. Either way ACTIVE, then the shelved image is deleted. Ports, fixed IPs
and volumes stay the server's throughout.

Each step holds a ``task_state`` with an owner and a deadline (``shelving``,
``shelving_offloading``, ``unshelving``/``spawning``); a flow that died is the sweeper's
(``expired``): back to where the step started, with the action's fault. The offload
timer is a SHELVED row's ``task_deadline`` with no task: the sweeper offloads it then.
Events ``compute.server.shelve``, ``shelve_offload`` and ``unshelve`` (``.start``/``.end``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context
from common_rpc.errors import RpcError

from ..db.models import InstanceActionEvent, Server
from ..wiring import Deps
from . import actions, images, moves, placement, scheduler, servers, snapshots
from .common import transaction
from .desired import server_state
from .errors import bad_field
from .tasks import BootFailed, load, power_code, server_context

log = logging.getLogger(__name__)

SHELVE, OFFLOAD, UNSHELVE = actions.SHELVE, actions.SHELVE_OFFLOAD, actions.UNSHELVE
ACTIONS = (SHELVE, OFFLOAD, UNSHELVE)
FROM = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED")
SHELVED, OFFLOADED = "SHELVED", "SHELVED_OFFLOADED"
SHELVING, OFFLOADING, UNSHELVING, SPAWNING = (
    "shelving",
    "shelving_offloading",
    "unshelving",
    "spawning",
)
TASKS = (SHELVING, OFFLOADING, UNSHELVING, SPAWNING)


class ShelveFailed(Exception):
    """A step failed; the message is the action's fault."""


def _deadline(deps: Deps) -> datetime:
    s = deps.settings
    return datetime.now(UTC) + timedelta(
        seconds=s.snapshot_timeout_s + s.spawn_timeout_s + 4 * s.rpc_timeout_s
    )


def _no_args(action: str, args: Any) -> None:
    """Nova's bodies at 2.1: null (unshelve: null or an empty object)."""
    if args is None or (action == UNSHELVE and args == {}):
        return
    raise bad_field(action, args, f"{args!r} is not of type 'null'")


async def request(deps: Deps, ctx: RequestContext, server_id: str, action: str, args: Any) -> None:
    """The server's task moved in the request's transaction (404, 400 for the body, 409
    when it cannot now); the flow after the answer."""
    _no_args(action, args)
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        if action == SHELVE:
            ok = server.status in FROM and server.task_state is None and bool(server.host)
            if ok:
                image = await snapshots.new_image(session, server, f"{server.name}-shelved", {})
                ok = await _begin(deps, session, server, SHELVING, shelved_image_id=image.id)
            event = "shelve"
        elif action == OFFLOAD:
            ok = server.status == SHELVED and server.task_state is None
            ok = ok and await _begin(deps, session, server, OFFLOADING)
            event = "shelve_offload"
        else:
            ok = server.status in (SHELVED, OFFLOADED) and server.task_state is None
            ok = ok and await _begin(deps, session, server, UNSHELVING)
            event = "unshelve"
        if not ok:
            raise servers.conflict_state(server, action)
        await session.refresh(server)
        await servers.emit(session, server, event, "start")
        await actions.record(session, server, action)
        session.expunge(server)
    work = {SHELVE: shelve, OFFLOAD: offload, UNSHELVE: unshelve}[action]
    with use_context(server_context(server)):
        deps.tasks.start(server.id, work(deps, server.id, action))


async def _begin(
    deps: Deps, session: AsyncSession, server: Server, task: str, **values: Any
) -> bool:
    return await servers.move(
        session,
        server.id,
        expected=(server.status,),
        when_task=None,
        task_state=task,
        task_owner=deps.instance,
        task_deadline=_deadline(deps),
        **values,
    )


async def _step(
    deps: Deps, server_id: str, source: str, task: str, /, *ends: str, **values: Any
) -> bool:
    """Move on from ``source``/``task`` if the work is still this process's; the events
    named in ``ends`` end (``.end``) with it."""
    async with transaction(deps.runtime.sessions) as session:
        moved = await servers.move(
            session,
            server_id,
            expected=(source,),
            when_task=task,
            owner=deps.instance,
            **values,
        )
        row = await session.get(Server, server_id) if moved and ends else None
        for event in ends if row is not None else ():
            await servers.emit(session, row, event, "end")
        return moved


async def _finish(deps: Deps, server_id: str, action: str, failed: str | None) -> None:
    async with transaction(deps.runtime.sessions) as session:
        await actions.finish(session, server_id, action, fault=failed)


def _offload_after(deps: Deps) -> dict[str, Any]:
    """A SHELVED row's offload timer: a deadline with no task (none: never)."""
    after = deps.settings.shelved_offload_time
    when = datetime.now(UTC) + timedelta(seconds=after) if after > 0 else None
    return {"task_state": None, "task_owner": None, "task_deadline": when}


async def shelve(deps: Deps, server_id: str, action: str = SHELVE) -> None:
    """Stop, save the disk into the shelved image, SHELVED; offloaded at once when
    ``shelved_offload_time`` is 0. A failed shelve leaves the server SHUTOFF (stopped
    for the copy) with no image, and the action's fault."""
    server = await load(deps, server_id)
    if server is None or server.task_state != SHELVING or not server.host:
        return
    status, image_id = server.status, server.shelved_image_id or ""
    failed: str | None = None
    try:
        if status != "SHUTOFF":
            await deps.agent(server.host).power(server_id, "stop")
        await snapshots.take(deps, server, image_id)
    except (RpcError, snapshots.SnapshotFailed) as exc:
        failed = f"Shelve failed: {getattr(exc, 'message', None) or exc}"
        log.warning("shelve of %s failed: %s", server_id, failed)
    if failed is not None:
        await snapshots.drop_image(deps, image_id)
        moved = await _step(
            deps,
            server_id,
            status,
            SHELVING,
            status="SHUTOFF" if status != "SUSPENDED" else status,
            vm_state="stopped" if status != "SUSPENDED" else "suspended",
            power_state=4,
            shelved_image_id=None,
            task_state=None,
            task_owner=None,
            task_deadline=None,
        )
        if moved:
            await _finish(deps, server_id, SHELVE, failed)
        return
    now = deps.settings.shelved_offload_time == 0
    values = {"status": SHELVED, "vm_state": "shelved", "power_state": 4}
    if now:  # straight on to the offload, under the shelve's action
        values |= {"task_state": OFFLOADING}
    else:
        values |= _offload_after(deps)
    if not await _step(deps, server_id, status, SHELVING, "shelve", **values):
        # Deleted (or taken over by the sweeper) meanwhile: the image is nobody's.
        current = await load(deps, server_id)
        if current is None or current.shelved_image_id != image_id:
            await snapshots.drop_image(deps, image_id)
        return
    if now:
        async with transaction(deps.runtime.sessions) as session:
            row = await session.get(Server, server_id)
            if row is not None:
                await servers.emit(session, row, "shelve_offload", "start")
        await offload(deps, server_id, SHELVE)
    else:
        await _finish(deps, server_id, SHELVE, None)


async def offload(deps: Deps, server_id: str, action: str = OFFLOAD) -> None:
    """The domain and its files gone from the host, the claim given back:
    SHELVED_OFFLOADED on no host. A failed one stays SHELVED (the action's fault)."""
    server = await load(deps, server_id)
    if server is None or server.status != SHELVED or server.task_state != OFFLOADING:
        return
    failed: str | None = None
    if server.host:
        try:
            await deps.agent(server.host).shelve_offload(server_id)
        except RpcError as exc:
            failed = f"Shelve offload failed: {exc.message}"
            log.warning("offload of %s failed: %s", server_id, failed)
    if failed is None:
        async with transaction(deps.runtime.sessions) as session:
            moved = await servers.move(
                session,
                server_id,
                expected=(SHELVED,),
                when_task=OFFLOADING,
                owner=deps.instance,
                status=OFFLOADED,
                vm_state="shelved_offloaded",
                power_state=0,
                host=None,
                task_state=None,
                task_owner=None,
                task_deadline=None,
            )
            if moved:
                await scheduler.release(session, server_id)
                row = await session.get(Server, server_id)
                if row is not None:
                    await servers.emit(session, row, "shelve_offload", "end")
    else:
        moved = await _step(deps, server_id, SHELVED, OFFLOADING, task_state=None,
                            task_owner=None, task_deadline=None)  # fmt: skip
    if moved:
        await _finish(deps, server_id, action, failed)


async def unshelve(deps: Deps, server_id: str, action: str = UNSHELVE) -> None:
    """ACTIVE again: started where it is, or scheduled and spawned from the shelved
    image; then that image is deleted. A failure leaves it as it was (offloaded: its
    new claim given back and the new host's copy destroyed), with the action's fault."""
    server = await load(deps, server_id)
    if server is None or server.task_state != UNSHELVING:
        return
    status, image_id = server.status, server.shelved_image_id
    failed: str | None = None
    host: str | None = server.host
    try:
        if status == SHELVED and host:
            reply = await deps.agent(host).power(server_id, "start")
        else:
            host = await _schedule(deps, server_id)
            await moves.move_ports(deps, server_id, host)
            await moves.move_volumes(deps, server_id, None, host)
            async with transaction(deps.runtime.sessions) as session:
                row = await session.get(Server, server_id)
                if row is None or row.task_state != SPAWNING:
                    raise ShelveFailed("The server left its unshelve.")
                row.generation = row.generation + 1
                await session.flush()
                desired = await server_state(session, deps.images, row)
            reply = await deps.agent(host).spawn(desired, timeout=deps.settings.spawn_timeout_s)
    except (RpcError, ShelveFailed, BootFailed, moves.MoveFailed, ValueError, LookupError) as exc:
        failed = f"Unshelve failed: {getattr(exc, 'message', None) or exc}"
        log.warning("unshelve of %s failed: %s", server_id, failed)
    if failed is not None:
        if status == OFFLOADED:
            await _undo_placement(deps, server_id, host)
        task = SPAWNING if status == OFFLOADED and host else UNSHELVING
        if await _step(deps, server_id, status, task, task_state=None, task_owner=None,
                       task_deadline=None):  # fmt: skip
            await _finish(deps, server_id, UNSHELVE, failed)
        return
    moved = await _step(
        deps,
        server_id,
        status,
        UNSHELVING if status == SHELVED else SPAWNING,
        "unshelve",
        status="ACTIVE",
        vm_state="active",
        power_state=power_code(reply.power_state, 1),
        launched_at=datetime.now(UTC),
        shelved_image_id=None,
        task_state=None,
        task_owner=None,
        task_deadline=None,
    )
    if moved:
        if image_id:
            await snapshots.drop_image(deps, image_id)
        await _finish(deps, server_id, UNSHELVE, None)


async def _schedule(deps: Deps, server_id: str) -> str:
    """A host for the offloaded server (its zone kept), claimed under its id."""
    hosts = await placement.candidates(deps)
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is None or server.status != OFFLOADED or server.task_state != UNSHELVING:
            raise ShelveFailed("The server left its unshelve.")
        need = scheduler.Need(server.vcpus, server.ram_mb, server.disk_gb)
        wanted = placement.Wanted.of_request(server.availability_zone)
        cap = await placement.place(
            session, deps.settings, server_id, need, hosts, wanted, server_id
        )
        if cap is None:
            raise ShelveFailed(scheduler.NO_VALID_HOST)
        moved = await servers.move(
            session,
            server_id,
            expected=(OFFLOADED,),
            when_task=UNSHELVING,
            owner=deps.instance,
            host=cap.host,
            availability_zone=cap.zone,
            task_state=SPAWNING,
        )
        if not moved:
            raise ShelveFailed("The server left its unshelve.")
        return cap.host


async def _undo_placement(deps: Deps, server_id: str, host: str | None) -> None:
    """An unshelve that failed after its placement: the copy there destroyed, the claim
    given back, on no host again."""
    if host:
        try:
            await deps.agent(host).shelve_offload(server_id)
        except RpcError as exc:
            log.warning("cleanup of %s on %s failed: %s", server_id, host, exc.message)
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(Server, server_id)
        if row is None or row.status != OFFLOADED:
            return
        await scheduler.release(session, server_id)
        row.host = None


async def expired(deps: Deps, session: AsyncSession, row: Server) -> None:
    """The sweeper's, for SHELVED and SHELVED_OFFLOADED rows past their deadline (and
    shelve's start statuses with a ``shelving`` task). A SHELVED row with no task: its
    offload timer, so the offload starts. Otherwise a flow that died: shelving goes back
    (SHUTOFF, its image deleted); offloading stays SHELVED; unshelving stays where it
    was (offloaded: the claim given back, on no host); the action ends with the fault."""
    if row.status == SHELVED and row.task_state is None:
        row.task_state = OFFLOADING
        row.task_owner = deps.instance
        row.task_deadline = _deadline(deps)
        await servers.emit(session, row, "shelve_offload", "start")
        sid, server = row.id, Server(id=row.id, project_id=row.project_id, user_id=row.user_id)

        def run(_session: Any) -> None:  # once the row is this run's for everyone
            with use_context(server_context(server)):
                deps.tasks.start(sid, offload(deps, sid, SHELVE))

        orm_event.listen(session.sync_session, "after_commit", run, once=True)
        return
    task, action = row.task_state, UNSHELVE
    why = f"The {task or 'shelve'} of the server did not finish within its deadline."
    if task == SHELVING:
        action = SHELVE
        if row.shelved_image_id:
            await images.discard(session, row.shelved_image_id)
            deps.images.delete(row.shelved_image_id)
        if row.status != "SUSPENDED":
            row.status, row.vm_state = "SHUTOFF", "stopped"
        row.shelved_image_id = None
    elif task == OFFLOADING:  # its own action (shelveOffload), or the shelve's
        action = OFFLOAD if await _running(session, row.id, OFFLOAD) else SHELVE
    elif task == SPAWNING and row.status == OFFLOADED:
        await scheduler.release(session, row.id)
        row.host = None
    row.task_state = None
    row.task_owner = None
    row.task_deadline = None
    await actions.finish(session, row.id, action, fault=why)


async def _running(session: AsyncSession, server_id: str, action: str) -> bool:
    """Whether ``action`` has a running event on the server."""
    found = await session.scalar(
        select(InstanceActionEvent.id).where(
            InstanceActionEvent.server_id == server_id,
            InstanceActionEvent.event == actions.EVENTS[action],
            InstanceActionEvent.status == actions.RUNNING,
        )
    )
    return found is not None
