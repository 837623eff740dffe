"""Power actions: os-stop, os-start and reboot through the host's agent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import use_context
from common_rpc.errors import RpcError

from ..db.models import Server
from ..wiring import Deps
from . import actions, servers
from .common import transaction
from .tasks import load, server_context

log = logging.getLogger(__name__)


POWER = {
    # action: (from status, task_state, agent call, to status, vm_state, power_state)
    "stop": ("ACTIVE", "powering-off", "SHUTOFF", "stopped", 4),
    "start": ("SHUTOFF", "powering-on", "ACTIVE", "active", 1),
}


async def begin_power(session: AsyncSession, server: Server, action: str) -> bool:
    source, task_state, *_ = POWER[action]
    moved = await servers.move(
        session,
        server.id,
        expected=(source,),
        when_task=None,
        task_state=task_state,
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
        values: dict[str, Any] = {"task_state": None}
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
        task_deadline=datetime.now(UTC) + timedelta(seconds=deps.settings.rpc_timeout_s * 4),
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
