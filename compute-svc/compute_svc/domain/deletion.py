"""Deleting a server: it goes only once everything it held is released, its quota too
(in the transaction whose DELETE removes the row, so exactly once).

Otherwise it stays DELETING and the sweeper runs the delete again past its deadline,
so a delete converges once the host and the other services answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context

from ..db.models import Server, ServerPort, VolumeAttachment
from ..wiring import Deps
from . import actions, images, locking, moves, quotas, scheduler, server_groups, servers
from .boot import release, release_strays
from .common import transaction
from .tasks import load, server_context
from .volumes import detach_all


async def delete_server(deps: Deps, ctx: RequestContext, server_id: str) -> None:
    """``DELETE /servers/<id>``: DELETING in the request's transaction, the release after
    (a delete already under way is left to run)."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        locking.check(server, ctx)
        started = await request_delete(session, deps, server)
    if started:
        start_delete(deps, server)


async def request_delete(session: AsyncSession, deps: Deps, server: Server) -> bool:
    """Mark DELETING (from any state); False when a delete already runs."""
    if server.status == "DELETING":
        return False
    moved = await servers.move(
        session,
        server.id,
        expected=servers.SETTLED,
        status="DELETING",
        task_owner=deps.instance,
        task_deadline=datetime.now(UTC) + timedelta(seconds=deps.settings.delete_timeout_s),
    )
    if moved:
        await session.refresh(server)
        await servers.emit(session, server, "delete", "start")
        await actions.record(session, server, actions.DELETE)
    return moved


def start_delete(deps: Deps, server: Server) -> None:
    """Delete now: work still running for the server here (a boot waiting on a reply
    that may never come) is cancelled, since the delete releases all it took (the claim,
    ports, domain, and any port or domain made for it after the cancel)."""
    running = deps.tasks.running.get(server.id)
    if running is not None:
        running.cancel()
    with use_context(server_context(server)):
        deps.tasks.start(server.id, delete(deps, server.id))


async def delete(deps: Deps, server_id: str) -> bool:
    """Release everything; the row goes (with delete.end) only once all of it is released."""
    server = await load(deps, server_id)
    if server is None or server.status != "DELETING":
        return False
    # The guest goes first: its volumes are then let go with no unplug to wait for (a
    # guest that would not let a disk go cannot hold its delete up).
    leftover, destroyed = await release(deps, server, destroy=True)
    volumes_left = await detach_all(deps, server) if destroyed else 1
    strays_released = await release_strays(deps, server)
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(Server, server_id)
        if row is None or row.status != "DELETING":
            return False
        # Ports a boot on another replica recorded since we read the row: not released yet.
        known = {nic["port_id"] for nic in server.nics or []}
        newer = [nic for nic in row.nics or [] if nic["port_id"] not in known]
        if leftover or newer or not destroyed or volumes_left or not strays_released:
            row.nics = leftover + newer
            return False  # the sweeper runs the delete again past its deadline
        await scheduler.release(session, server_id)  # once: its own DELETE of the claim
        # The quota goes back only in the transaction whose DELETE removed the row: a
        # delete run again, or by another replica, at the same time finds it gone.
        gone = await session.execute(
            sql_delete(Server)
            .where(Server.id == server_id, Server.status == "DELETING")
            .execution_options(synchronize_session=False)
        )
        session.expunge(row)
        if getattr(gone, "rowcount", 0) != 1:
            return False
        await quotas.release_server(session, row)
        await servers.emit(session, row, "delete", "end")
        await session.execute(
            sql_delete(VolumeAttachment).where(VolumeAttachment.server_id == server_id)
        )
        await session.execute(sql_delete(ServerPort).where(ServerPort.server_id == server_id))
        await actions.forget(session, server_id)
        await server_groups.leave(session, server_id)
        await moves.forget(session, server_id)
        if row.shelved_image_id:  # a shelved server's image goes with it, as in Nova
            await images.discard(session, row.shelved_image_id)
    if row.shelved_image_id:
        deps.images.delete(row.shelved_image_id)
    return True
