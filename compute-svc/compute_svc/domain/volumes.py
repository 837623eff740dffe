"""Volume attachments: Cinder's protocol over RPC, undone in reverse on failure.

attach: the attachment row (its device chosen, the server's state checked), then
        reserve, initialize_connection, agent attach_volume, attach
detach: begin_detaching (before the 202), then in the background the agent's
        detach_volume (the guest asked again while it holds the disk), then
        terminate_connection, detach; a guest that kept the disk: roll_detaching, the
        attachment attached again, the fault on the instance action (``detaching``)

The connector names the iSCSI initiator the server's host logs in with (its compute-agent
reports it in its heartbeat): volume-svc exports the volume to that initiator only. The
connector an attachment was made with is kept with it, so its detach names the same one
even when the host has stopped reporting.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context
from common_rpc.contracts.volume import ConnectionInfo, Connector
from common_rpc.errors import (
    Conflict,
    Invalid,
    NotFound,
    RpcError,
    RpcTimeout,
    ServiceUnavailable,
)

from ..contracts import VolumeConnection
from ..db.models import Server, VolumeAttachment
from ..wiring import Deps
from . import actions, detaching, scheduler, servers
from .common import transaction, try_insert
from .errors import conflict, invalid, not_found
from .tasks import server_context

log = logging.getLogger(__name__)

# Where an attachment's ``connection`` keeps the connector it was exported to.
CONNECTOR_KEY = "connector"


def connector(host: str, capabilities: dict[str, Any]) -> Connector:
    """Cinder's connector for ``host``; refused when its agent has not named its initiator."""
    initiator = capabilities.get("initiator")
    if not isinstance(initiator, str) or not initiator:
        raise Conflict(f"Compute host {host} has not reported its iSCSI initiator.")
    return Connector(host=host, initiator=initiator, multipath=False)


async def host_connector(deps: Deps, host: str) -> Connector:
    """The connector of ``host`` as its compute-agent last reported it."""
    for agent in await deps.agents.list(binary=scheduler.BINARY):
        if agent.host == host:
            return connector(host, agent.capabilities)
    return connector(host, {})


async def _attached_connector(deps: Deps, server: Server, volume_id: str) -> Connector:
    """The connector the attachment was exported to; the host's own for older rows."""
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(VolumeAttachment, (server.id, volume_id))
        kept = (row.connection or {}).get(CONNECTOR_KEY) if row is not None else None
    if isinstance(kept, dict) and kept.get("initiator"):
        return Connector.model_validate(kept)
    assert server.host is not None
    return await host_connector(deps, server.host)


# ---------------------------------------------------------------- the attachments shown


async def attachments_of(
    session: AsyncSession, ctx: RequestContext, server_id: str
) -> list[VolumeAttachment]:
    """The server's attachments (404 when the caller cannot see the server)."""
    await servers.get(session, ctx, server_id)
    rows = await session.scalars(
        select(VolumeAttachment).where(VolumeAttachment.server_id == server_id)
    )
    return list(rows)


async def attachment(
    session: AsyncSession, ctx: RequestContext, server_id: str, volume_id: str
) -> VolumeAttachment:
    await servers.get(session, ctx, server_id)
    row = await session.get(VolumeAttachment, (server_id, volume_id))
    if row is None:
        raise not_found("Volume attachment", volume_id)
    return row


# ---------------------------------------------------------------- detach (202, then a task)


async def detach(deps: Deps, ctx: RequestContext, server_id: str, volume_id: str) -> None:
    """``DELETE os-volume_attachments/<volume>``: the volume ``detaching`` (Cinder's
    ``begin_detaching``) before the caller's answer, the host's unplug after it."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        job = await request_detach(session, deps, server, volume_id)
        session.expunge(server)
    with use_context(server_context(server)):
        await begin_detaching(deps, server, volume_id, job)
    start_detach(deps, server, volume_id, job)


async def request_detach(
    session: AsyncSession, deps: Deps, server: Server, volume_id: str
) -> detaching.Job:
    """In the request's transaction: ``attached`` -> ``detaching``, the action and its
    event. 404 when the volume is not attached to the server; 409 while it moves, or
    while the server is not ACTIVE or SHUTOFF or has a task under way (Nova's rule)."""
    row = await session.get(VolumeAttachment, (server.id, volume_id))
    if row is None:
        raise NotFound(f"Instance {server.id} is not attached to volume {volume_id}")
    if server.status not in ("ACTIVE", "SHUTOFF") or not server.host or server.task_state:
        raise servers.conflict_state(server, "detach_volume")
    moved = await session.execute(
        update(VolumeAttachment)
        .where(
            VolumeAttachment.server_id == server.id,
            VolumeAttachment.volume_id == volume_id,
            VolumeAttachment.status == "attached",
        )
        .values(status="detaching")
        .execution_options(synchronize_session=False)
    )
    if int(getattr(moved, "rowcount", 0) or 0) != 1:
        raise Conflict(f"Volume {volume_id} is still {row.status}.")
    job = await detaching.begin(session, deps, server, actions.DETACH_VOLUME, volume_id)
    await servers.emit(session, server, "detach", "start")
    return job


async def begin_detaching(deps: Deps, server: Server, volume_id: str, job: detaching.Job) -> None:
    """Cinder's ``begin_detaching``, before the request answers (as Nova's API does). A
    volume service that refuses: the detach is undone (400, Nova's ``Invalid volume``)."""
    try:
        await deps.volume.begin_detaching(volume_id)
    except RpcError as exc:
        if isinstance(exc, RpcTimeout):  # it may have landed: take it back
            with contextlib.suppress(RpcError):
                await deps.volume.roll_detaching(volume_id)
        refused = exc.http_status in (400, 404, 409)
        fault = f"Invalid volume: {exc.message}" if refused else exc.message
        async with transaction(deps.runtime.sessions) as session:
            if await detaching.drop(session, job):
                await _reattached(session, server.id, volume_id)
                await detaching.emit_failed(session, server, "detach", fault)
        if refused:
            raise Invalid(fault) from None
        raise


def start_detach(deps: Deps, server: Server, volume_id: str, job: detaching.Job) -> None:
    detaching.start(deps, server, job, run_detach(deps, server, volume_id, job))


async def run_detach(deps: Deps, server: Server, volume_id: str, job: detaching.Job) -> None:
    """The host unplugs the disk, asking the guest again while it holds it; then the
    volume is let go, or, when the guest kept it, everything is rolled back."""
    assert server.host is not None
    try:
        await deps.agent(server.host).detach_volume(server.id, volume_id, detaching.unplug(deps))
    except RpcError as exc:
        log.warning("detach of %s from %s failed: %s", volume_id, server.id, exc.message)
        await roll_back(deps, server, volume_id, job, await _refused(deps, job, volume_id, exc))
        return
    if await detaching.advance(deps, job):
        await release(deps, server, volume_id, job)


async def _refused(deps: Deps, job: detaching.Job, volume_id: str, exc: RpcError) -> str:
    """The fault the user reads: Nova's ``Device detach failed for <device>: <reason>``."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        row = await session.get(VolumeAttachment, (job.server_id, volume_id))
        device = row.device if row is not None else volume_id
    prefix = f"Device detach failed for {device}: "
    if isinstance(exc, RpcTimeout | ServiceUnavailable):
        return prefix + "the compute host did not answer."
    reason = exc.message
    if reason.startswith("Device detach failed for ") and ": " in reason:
        reason = reason.split(": ", 1)[1]  # the host's own prefix names the volume
    return prefix + reason


async def roll_back(
    deps: Deps, server: Server, volume_id: str, job: detaching.Job, fault: str
) -> None:
    """The guest kept the disk: the volume ``in-use`` again (Cinder's roll_detaching),
    the attachment ``attached``, the fault on the action, ``compute.server.detach.error``."""
    if not await detaching.holds(deps, job):
        return  # taken over: the run that has it decides
    try:
        await deps.volume.roll_detaching(volume_id)
    except RpcError as exc:  # the volume service's own sweeper puts it back later
        log.warning("roll back of the detach of %s failed: %s", volume_id, exc.message)
    async with transaction(deps.runtime.sessions) as session:
        if not await detaching.end(session, job, fault):
            return
        await _reattached(session, server.id, volume_id)
        await detaching.emit_failed(session, server, "detach", fault)


async def release(deps: Deps, server: Server, volume_id: str, job: detaching.Job) -> None:
    """The guest let the disk go: the export and Cinder's attachment go, then the row.
    A volume service away leaves the event ``releasing``: the sweeper finishes it."""
    if not await detaching.holds(deps, job):
        return
    try:
        conn = await _attached_connector(deps, server, volume_id)
        await deps.volume.terminate_connection(volume_id, conn)
        await deps.volume.detach(volume_id, server.id)
    except RpcError as exc:
        log.warning("release of %s from %s failed: %s", volume_id, server.id, exc.message)
        return
    async with transaction(deps.runtime.sessions) as session:
        if not await detaching.end(session, job):
            return
        await _forget(session, server.id, volume_id)
        await servers.emit(session, server, "detach", "end")


async def _reattached(session: AsyncSession, server_id: str, volume_id: str) -> None:
    await session.execute(
        update(VolumeAttachment)
        .where(
            VolumeAttachment.server_id == server_id,
            VolumeAttachment.volume_id == volume_id,
            VolumeAttachment.status == "detaching",
        )
        .values(status="attached")
        .execution_options(synchronize_session=False)
    )


async def _forget(session: AsyncSession, server_id: str, volume_id: str) -> None:
    await session.execute(
        sql_delete(VolumeAttachment).where(
            VolumeAttachment.server_id == server_id, VolumeAttachment.volume_id == volume_id
        )
    )


# ---------------------------------------------------------------- a server's delete


async def detach_all(deps: Deps, server: Server) -> int:
    """At a server's delete, once its guest is gone (no unplug then): every volume let
    go, whatever its attachment's state; returns how many are still attached."""
    async with transaction(deps.runtime.sessions) as session:
        ids = list(
            await session.scalars(
                select(VolumeAttachment.volume_id).where(VolumeAttachment.server_id == server.id)
            )
        )
    return sum([not await _let_go(deps, server, v) for v in ids])


async def _let_go(deps: Deps, server: Server, volume_id: str) -> bool:
    await _emit(deps, server, "detach", "start")
    try:
        with contextlib.suppress(Invalid, Conflict):
            # Detaching already (a detach under way), or let go by an earlier run.
            await deps.volume.begin_detaching(volume_id)
        conn = await _attached_connector(deps, server, volume_id)
        await deps.volume.terminate_connection(volume_id, conn)
        try:
            await deps.volume.detach(volume_id, server.id)
        except Invalid:  # a detach that ran meanwhile moved it first: now it answers done
            await deps.volume.detach(volume_id, server.id)
    except NotFound:
        pass  # the volume is gone: nothing holds it
    except RpcError as exc:
        log.warning("detach of %s from %s failed: %s", volume_id, server.id, exc.message)
        return False
    async with transaction(deps.runtime.sessions) as session:
        await _forget(session, server.id, volume_id)
        await servers.emit(session, server, "detach", "end")
    return True


# ---------------------------------------------------------------- attach

DEVICES = tuple(f"/dev/vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")


def requested(spec: dict[str, Any]) -> str:
    """The ``volumeId`` of a ``volumeAttachment``."""
    volume_id = spec.get("volumeId")
    if not isinstance(volume_id, str) or not volume_id:
        raise invalid("Invalid input for field/attribute volumeId.")
    return volume_id


def next_device(taken: set[str]) -> str:
    for device in DEVICES:
        if device not in taken:
            return device
    raise conflict("No free device name for another volume.")


async def request_attach(session: AsyncSession, server: Server, volume_id: str) -> str:
    """In the request's transaction: the ``attaching`` row with the next free device (the
    one asked of the host). 409 unless the server is ACTIVE or SHUTOFF, placed, with no
    task under way (Nova's rule); 400 when the volume is attached or attaching already."""
    if server.status not in ("ACTIVE", "SHUTOFF") or not server.host or server.task_state:
        raise servers.conflict_state(server, "attach_volume")
    taken = set(
        await session.scalars(
            select(VolumeAttachment.device).where(VolumeAttachment.server_id == server.id)
        )
    )
    row = VolumeAttachment(
        server_id=server.id,
        volume_id=volume_id,
        device=next_device(taken),
        status="attaching",
        connection={},
    )
    if not await try_insert(session, row):
        raise invalid(f"Volume {volume_id} is already attached or attaching.")
    return row.device


async def attach_to(deps: Deps, ctx: RequestContext, server_id: str, volume_id: str) -> str:
    """``POST os-volume_attachments``: the row, then the attach; the device the guest got.

    A refusal (the attach undone: volume available, no export, no secret) is a 400 that
    says why; a volume service away or silent stays a 503/504.
    """
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        device = await request_attach(session, server, volume_id)
        session.expunge(server)
    try:
        return await attach(deps, server, volume_id, device)
    except RpcError as exc:
        if exc.http_status in (400, 404, 409, 500):
            raise invalid(f"Volume {volume_id} could not be attached: {exc}") from None
        raise


async def attach(deps: Deps, server: Server, volume_id: str, device: str) -> str:
    """reserve, initialize_connection, agent attach, attach; undone in reverse on failure.

    Returns the device the agent reports (``device`` is the one asked for).
    """
    assert server.host is not None
    conn: Connector | None = None
    done: list[str] = []
    async with transaction(deps.runtime.sessions) as session:
        await actions.record(session, server, actions.ATTACH_VOLUME)
    try:
        conn = await host_connector(deps, server.host)
        await deps.volume.reserve(volume_id)
        done.append("reserve")
        await _emit(deps, server, "attach", "start")  # the volume is the caller's to attach
        info: ConnectionInfo = await deps.volume.initialize_connection(volume_id, conn)
        done.append("connect")
        connection = VolumeConnection.of(info)
        plugged = await deps.agent(server.host).attach_volume(server.id, volume_id, connection)
        done.append("agent")
        if plugged.device:
            device = plugged.device
            device = device if device.startswith("/dev/") else f"/dev/{device}"
        await deps.volume.attach(volume_id, server.id, device, server.host)
    except RpcError as exc:
        await _undo_attach(deps, server, volume_id, conn, done)
        async with transaction(deps.runtime.sessions) as session:
            await _forget(session, server.id, volume_id)
            await actions.finish(session, server.id, actions.ATTACH_VOLUME, fault=exc.message)
        raise
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(VolumeAttachment, (server.id, volume_id))
        if row is not None:
            row.status = "attached"
            row.device = device
            kept = {CONNECTOR_KEY: conn.model_dump(mode="json")}
            row.connection = info.model_dump(mode="json") | kept
        await servers.emit(session, server, "attach", "end")
        await actions.finish(session, server.id, actions.ATTACH_VOLUME)
    return device


async def _emit(deps: Deps, server: Server, action: str, phase: str) -> None:
    async with transaction(deps.runtime.sessions) as session:
        await servers.emit(session, server, action, phase)


async def _undo_attach(
    deps: Deps, server: Server, volume_id: str, conn: Connector | None, done: list[str]
) -> None:
    steps = []
    if "agent" in done and server.host:
        unplug = detaching.once(deps)
        steps.append(deps.agent(server.host).detach_volume(server.id, volume_id, unplug))
    if "connect" in done and conn is not None:
        steps.append(deps.volume.terminate_connection(volume_id, conn))
    if "reserve" in done:
        steps.append(deps.volume.unreserve(volume_id))
    for step in steps:
        try:
            await step
        except RpcError as exc:
            log.warning("undoing the attach of %s failed: %s", volume_id, exc.message)
