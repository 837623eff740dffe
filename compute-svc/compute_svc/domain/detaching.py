"""A detach (volume or port) after its 202: owned, bound by a deadline, never left half-way.

The request moves the device to detaching and records the action with its event, in one
transaction (``begin``). The event is the detach's transitional record:

    unplugging --the guest let it go--> releasing --volume/port let go--> finished, Success
        `--the guest kept it (every unplug request asked), or a failure--> finished, Error:
           the device attached again (``roll_back`` in volumes/interfaces)

It has an owner (this process and a token of the run) and a deadline
(``detach_deadline_s``: the unplug attempts and the calls around them). Every move is a
compare-and-swap on the status and the owner, so a run that lost its event stops without
touching anything. Past the deadline the sweeper takes the event over (``take_over``):
``unplugging`` is rolled back, ``releasing`` finished (``domain.sweeps``).
"""

from __future__ import annotations

import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import use_context
from common_rpc.contracts.payloads import ServerInterfacePayload, ServerPayload
from common_rpc.outbox import add_event

from ..clients import Unplug
from ..db.models import InstanceActionEvent, Server
from ..wiring import Deps
from . import actions, servers
from .common import transaction
from .tasks import server_context

UNPLUGGING, RELEASING = "unplugging", "releasing"
# A run taken over past its deadline gets this long (in RPC deadlines) to finish.
TAKEN_OVER_RPCS = 4


@dataclass(frozen=True)
class Job:
    """One run of a detach: its event, who runs it, and the device."""

    event_id: int
    owner: str
    server_id: str
    target: str


def _owner(deps: Deps) -> str:
    return f"{deps.instance}/{secrets.token_hex(4)}"


async def begin(session: AsyncSession, deps: Deps, server: Server, action: str, target: str) -> Job:
    """The action and its ``unplugging`` event, owned by a new run, with the deadline."""
    owner = _owner(deps)
    event = await actions.record(
        session,
        server,
        action,
        status=UNPLUGGING,
        owner=owner,
        deadline_s=deps.settings.detach_deadline_s,
        target=target,
    )
    return Job(event.id, owner, server.id, target)


def unplug(deps: Deps) -> Unplug:
    """What the host is told: Nova's attempts and timeout, within the unplug budget."""
    settings = deps.settings
    return Unplug.within(
        settings.device_detach_attempts, settings.device_detach_timeout, settings.detach_unplug_s
    )


def once(deps: Deps) -> Unplug:
    """One unplug request: undoing an attach that just plugged the device."""
    timeout = deps.settings.device_detach_timeout
    return Unplug.within(1, timeout, timeout + 1.0)


async def advance(deps: Deps, job: Job) -> bool:
    """``unplugging`` -> ``releasing``: the guest let the device go. False: not ours now."""
    async with transaction(deps.runtime.sessions) as session:
        moved = await session.execute(
            update(InstanceActionEvent)
            .where(
                InstanceActionEvent.id == job.event_id,
                InstanceActionEvent.status == UNPLUGGING,
                InstanceActionEvent.task_owner == job.owner,
            )
            .values(status=RELEASING)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(moved, "rowcount", 0) or 0) == 1


async def holds(deps: Deps, job: Job) -> bool:
    """Whether the run still owns its event: asked before a step outside the database
    (the compare-and-swap that ends the event still decides)."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        row = await session.get(InstanceActionEvent, job.event_id)
        return row is not None and row.task_owner == job.owner


async def end(session: AsyncSession, job: Job, fault: str | None = None) -> bool:
    """The detach ended (``fault``: it failed, the device is attached again); False when
    another run holds the event (then that run decides)."""
    return await actions.end(
        session, job.event_id, fault=fault, expected=(UNPLUGGING, RELEASING), owner=job.owner
    )


async def drop(session: AsyncSession, job: Job) -> bool:
    """Forget the action of a detach refused before it began (Nova records none)."""
    if not await end(session, job):
        return False
    await actions.forget_action(session, job.event_id)
    return True


def take_over(deps: Deps, row: InstanceActionEvent) -> Job:
    """In the sweeper's transaction: the expired event becomes a new run's."""
    row.task_owner = _owner(deps)
    wait = TAKEN_OVER_RPCS * deps.settings.rpc_timeout_s
    row.task_deadline = datetime.now(UTC) + timedelta(seconds=wait)
    return Job(row.id, row.task_owner, row.server_id, row.target or "")


def start(deps: Deps, server: Server, job: Job, work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` in the background as the server's project. A run that took over an
    expired one does not wait for it: the old one finds its event taken and stops."""
    with use_context(server_context(server)):
        deps.tasks.start(f"{server.id}/{job.target}/{job.owner}", work)


async def emit_failed(
    session: AsyncSession, server: Server, action: str, fault: str, **port: Any
) -> None:
    """``compute.server.<action>.error``: the detach failed, the device is attached again
    (``port``: the port's ``port_id`` and ``network_id`` for an interface)."""
    base = servers.payload(server).model_dump() | {"fault": fault}
    payload = ServerInterfacePayload(**base, **port) if port else ServerPayload(**base)
    event = servers.EVENT.format(action=action, phase="error")
    await add_event(session, event, payload, project_id=server.project_id)
