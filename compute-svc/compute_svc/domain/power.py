"""Power actions through the host's agent: os-stop, os-start, reboot, pause/unpause
(libvirt suspend/resume: PAUSED) and suspend/resume (a managed save: SUSPENDED).

Each moves the server's ``task_state`` in the request's transaction, with an owner and a
deadline (``rpc_timeout_s`` times four); its flow ends it. A flow that died with its
process leaves the deadline to the sweeper (``expired``): the task is cleared, the
status kept as it was, and the action ends with the fault."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context
from common_rpc.errors import RpcError

from ..db.models import Server
from ..wiring import Deps
from . import actions, servers
from .common import transaction
from .errors import bad_field, conflict, invalid
from .tasks import load, power_code, server_context

log = logging.getLogger(__name__)


POWER = {
    # action: (from status, task_state, to status, vm_state, power_state); the agent's
    # power call is the action's name.
    "stop": ("ACTIVE", "powering-off", "SHUTOFF", "stopped", 4),
    "start": ("SHUTOFF", "powering-on", "ACTIVE", "active", 1),
    "pause": ("ACTIVE", "pausing", "PAUSED", "paused", 3),
    "unpause": ("PAUSED", "unpausing", "ACTIVE", "active", 1),
    "suspend": ("ACTIVE", "suspending", "SUSPENDED", "suspended", 4),
    "resume": ("SUSPENDED", "resuming", "ACTIVE", "active", 1),
}
# The request bodies' names of the actions above.
VERBS = {"os-stop": "stop", "os-start": "start"} | {
    v: v for v in POWER if v not in ("stop", "start")
}


REBOOT_TYPES = ("HARD", "Hard", "hard", "SOFT", "Soft", "soft")


async def request(deps: Deps, ctx: RequestContext, server_id: str, action: str, args: Any) -> None:
    """``os-start``, ``os-stop`` or ``reboot`` (``args``: its body): the server moved in
    the request's transaction (404, then 400 for the body, 409 when it cannot move now);
    the host is told after the caller has its answer."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        start: Callable[[], None]
        if action in VERBS:
            verb = VERBS[action]
            if not await begin_power(session, deps, server, verb):
                raise servers.conflict_state(server, action)
            start = partial(start_power, deps, server, verb)
        elif action == "reboot":
            hard = reboot_type(args) == "HARD"
            if not await begin_reboot(session, deps, server, hard):
                raise servers.conflict_state(server, action)
            start = partial(start_reboot, deps, server, hard)
        else:
            raise invalid(f"There is no such action: {action}")
    start()


def reboot_type(args: Any) -> str:
    """``{"type": "SOFT"|"HARD"}`` (any of Nova's spellings), refused in its words."""
    if not isinstance(args, dict):
        raise bad_field("reboot", args, f"{args!r} is not of type 'object'")
    if "type" not in args:
        raise bad_field("reboot", args, "'type' is a required property")
    kind = args["type"]
    if kind not in REBOOT_TYPES:
        raise bad_field("type", kind, f"{kind!r} is not one of {list(REBOOT_TYPES)!r}")
    return str(kind).upper()


async def console_output(
    deps: Deps, ctx: RequestContext, server_id: str, length: int | None
) -> str:
    """``os-getConsoleOutput``: the guest's serial log from its host (its last ``length``
    lines); 409 unless the server runs or is stopped on a host."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
    if not server.host or server.status not in ("ACTIVE", "SHUTOFF", "REBOOT", "HARD_REBOOT"):
        raise conflict(f"Cannot get console output of instance {server_id} in {server.status}.")
    return (await deps.agent(server.host).console_output(server_id, length)).output


RUNNING = 1


async def observed(deps: Deps, server_id: str, power_state: str | int) -> str | None:
    """What a host saw of a guest (``power_state_changed``): a guest that shut itself down
    makes its ACTIVE server SHUTOFF; the server's status after (None: it is gone)."""
    code = power_code(power_state)
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is None:
            return None
        if server.status == "ACTIVE" and server.task_state is None and code != RUNNING:
            await servers.move(
                session,
                server_id,
                expected=("ACTIVE",),
                when_task=None,
                status="SHUTOFF",
                vm_state="stopped",
                power_state=code,
            )
        elif server.status in ("ACTIVE", "SHUTOFF"):
            server.power_state = code
        await session.refresh(server)
        return server.status


async def begin_power(session: AsyncSession, deps: Deps, server: Server, action: str) -> bool:
    source, task_state, *_ = POWER[action]
    moved = await servers.move(
        session,
        server.id,
        expected=(source,),
        when_task=None,
        task_state=task_state,
        task_owner=deps.instance,
        task_deadline=_deadline(deps),
    )
    if moved:
        await servers.emit(session, server, action, "start")
        await actions.record(session, server, action)
    return moved


def start_power(deps: Deps, server: Server, action: str) -> None:
    with use_context(server_context(server)):
        deps.tasks.start(server.id, power(deps, server.id, action))


async def power(deps: Deps, server_id: str, action: str) -> None:
    source, task_state, target, vm_state, power_state = POWER[action]
    server = await load(deps, server_id)
    if server is None or server.host is None:
        return
    agent = deps.agent(server.host)
    failed: str | None = None
    try:
        await agent.power(server_id, action)
    except RpcError as exc:
        log.warning("%s of %s failed: %s", action, server_id, exc.message)
        failed = exc.message
    ok = failed is None
    async with transaction(deps.runtime.sessions) as session:
        await actions.finish(session, server_id, action, fault=failed)
        values: dict[str, Any] = {"task_state": None, "task_owner": None, "task_deadline": None}
        if ok:
            values |= {
                "status": target,
                "vm_state": vm_state,
                "power_state": power_state,
                "generation": Server.generation + 1,
            }
        if await servers.move(
            session, server_id, expected=(source,), when_task=task_state, **values
        ):
            row = await session.get(Server, server_id)
            if row is not None and ok:
                await servers.emit(session, row, action, "end")


async def begin_reboot(session: AsyncSession, deps: Deps, server: Server, hard: bool) -> bool:
    moved = await servers.move(
        session,
        server.id,
        expected=("ACTIVE",),
        when_task=None,
        status="HARD_REBOOT" if hard else "REBOOT",
        task_state="rebooting_hard" if hard else "rebooting",
        task_owner=deps.instance,
        task_deadline=_deadline(deps),
    )
    if moved:
        await servers.emit(session, server, "reboot", "start")
        await actions.record(session, server, actions.REBOOT)
    return moved


def start_reboot(deps: Deps, server: Server, hard: bool) -> None:
    with use_context(server_context(server)):
        deps.tasks.start(server.id, reboot(deps, server.id, hard))


async def reboot(deps: Deps, server_id: str, hard: bool) -> None:
    server = await load(deps, server_id)
    if server is None or server.host is None:
        return
    failed: str | None = None
    try:
        await deps.agent(server.host).power(server_id, "reboot")
    except RpcError as exc:
        log.warning("reboot of %s failed: %s", server_id, exc.message)
        failed = exc.message
    async with transaction(deps.runtime.sessions) as session:
        await actions.finish(session, server_id, actions.REBOOT, fault=failed)
        if await servers.move(
            session,
            server_id,
            expected=("REBOOT", "HARD_REBOOT"),
            status="ACTIVE",
            vm_state="active",
            task_state=None,
            power_state=1,
            task_owner=None,
            task_deadline=None,
        ):
            row = await session.get(Server, server_id)
            if row is not None:
                await servers.emit(session, row, "reboot", "end")


def _deadline(deps: Deps) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=deps.settings.rpc_timeout_s * 4)


# The statuses a power action starts from, and its task states (the sweeper's).
SOURCES = tuple(sorted({entry[0] for entry in POWER.values()}))
TASKS = {entry[1]: action for action, entry in POWER.items()}


async def expired(session: AsyncSession, row: Server) -> None:
    """The sweeper's: a power action whose flow died past its deadline. Its task is
    cleared and the status kept (the host's reconcile reports the guest's real power
    state); the action ends with the fault."""
    action = TASKS.get(row.task_state or "")
    row.task_owner = None
    row.task_deadline = None
    if action is None:
        return  # a deadline left by another flow: nothing of ours runs
    row.task_state = None
    why = f"The {action} of the server did not finish within its deadline."
    await actions.finish(session, row.id, action, fault=why)
