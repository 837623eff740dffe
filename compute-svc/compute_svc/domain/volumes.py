"""Volume attachments: Cinder's protocol over RPC, undone in reverse on failure.

attach: reserve, initialize_connection, agent attach_volume, attach
detach: begin_detaching, agent detach_volume, terminate_connection, detach

The connector names the iSCSI initiator the server's host logs in with (its compute-agent
reports it in its heartbeat): volume-svc exports the volume to that initiator only. The
connector an attachment was made with is kept with it, so its detach names the same one
even when the host has stopped reporting.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from common_rpc.errors import Conflict, RpcError

from .. import scheduler
from ..db.models import Server, VolumeAttachment
from ..wiring import Deps
from . import servers
from .common import transaction

log = logging.getLogger(__name__)

# Where an attachment's ``connection`` keeps the connector it was exported to.
CONNECTOR_KEY = "connector"


def connector(host: str, capabilities: dict[str, Any]) -> dict[str, Any]:
    """Cinder's connector for ``host``; refused when its agent has not named its initiator."""
    initiator = capabilities.get("initiator")
    if not isinstance(initiator, str) or not initiator:
        raise Conflict(f"Compute host {host} has not reported its iSCSI initiator.")
    return {"host": host, "initiator": initiator, "multipath": False}


async def host_connector(deps: Deps, host: str) -> dict[str, Any]:
    """The connector of ``host`` as its compute-agent last reported it."""
    for agent in await deps.agents.list(binary=scheduler.BINARY):
        if agent.host == host:
            return connector(host, agent.capabilities)
    return connector(host, {})


async def _attached_connector(deps: Deps, server: Server, volume_id: str) -> dict[str, Any]:
    """The connector the attachment was exported to; the host's own for older rows."""
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(VolumeAttachment, (server.id, volume_id))
        kept = (row.connection or {}).get(CONNECTOR_KEY) if row is not None else None
    if isinstance(kept, dict) and kept.get("initiator"):
        return dict(kept)
    assert server.host is not None
    return await host_connector(deps, server.host)


async def detach_one(deps: Deps, server: Server, volume_id: str) -> bool:
    """begin_detaching, agent detach, terminate_connection, detach; True once all done."""
    await _emit(deps, server, "detach", "start")
    try:
        await deps.volume.begin_detaching(volume_id)
        if server.host:
            await deps.agent(server.host).detach_volume(server.id, volume_id)
            conn = await _attached_connector(deps, server, volume_id)
            await deps.volume.terminate_connection(volume_id, conn)
        await deps.volume.detach(volume_id, server.id)
    except RpcError as exc:
        log.warning("detach of %s from %s failed: %s", volume_id, server.id, exc.message)
        return False
    async with transaction(deps.runtime.sessions) as session:
        await session.execute(
            sql_delete(VolumeAttachment).where(
                VolumeAttachment.server_id == server.id, VolumeAttachment.volume_id == volume_id
            )
        )
        await servers.emit(session, server, "detach", "end")
    return True


async def detach_all(deps: Deps, server: Server) -> int:
    """Detach every volume of ``server``; returns how many are still attached."""
    async with transaction(deps.runtime.sessions) as session:
        ids = list(
            await session.scalars(
                select(VolumeAttachment.volume_id).where(VolumeAttachment.server_id == server.id)
            )
        )
    return sum([not await detach_one(deps, server, v) for v in ids])


async def attach(deps: Deps, server: Server, volume_id: str, device: str) -> str:
    """reserve, initialize_connection, agent attach, attach; undone in reverse on failure.

    Returns the device the agent reports (``device`` is the one asked for).
    """
    assert server.host is not None
    conn: dict[str, Any] = {}
    done: list[str] = []
    try:
        conn = await host_connector(deps, server.host)
        await deps.volume.reserve(volume_id)
        done.append("reserve")
        await _emit(deps, server, "attach", "start")  # the volume is the caller's to attach
        info = await deps.volume.initialize_connection(volume_id, conn)
        done.append("connect")
        plugged = await deps.agent(server.host).attach_volume(server.id, volume_id, info)
        done.append("agent")
        if isinstance(plugged, dict) and plugged.get("device"):
            device = str(plugged["device"])
            device = device if device.startswith("/dev/") else f"/dev/{device}"
        await deps.volume.attach(volume_id, server.id, device, server.host)
    except RpcError:
        await _undo_attach(deps, server, volume_id, conn, done)
        async with transaction(deps.runtime.sessions) as session:
            await session.execute(
                sql_delete(VolumeAttachment).where(
                    VolumeAttachment.server_id == server.id,
                    VolumeAttachment.volume_id == volume_id,
                )
            )
        raise
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(VolumeAttachment, (server.id, volume_id))
        if row is not None:
            row.status = "attached"
            row.device = device
            kept = dict(info) if isinstance(info, dict) else {}
            row.connection = kept | {CONNECTOR_KEY: conn}
        await servers.emit(session, server, "attach", "end")
    return device


async def _emit(deps: Deps, server: Server, action: str, phase: str) -> None:
    async with transaction(deps.runtime.sessions) as session:
        await servers.emit(session, server, action, phase)


async def _undo_attach(
    deps: Deps, server: Server, volume_id: str, conn: dict[str, Any], done: list[str]
) -> None:
    steps = []
    if "agent" in done and server.host:
        steps.append(deps.agent(server.host).detach_volume(server.id, volume_id))
    if "connect" in done:
        steps.append(deps.volume.terminate_connection(volume_id, conn))
    if "reserve" in done:
        steps.append(deps.volume.unreserve(volume_id))
    for step in steps:
        try:
            await step
        except RpcError as exc:
            log.warning("undoing the attach of %s failed: %s", volume_id, exc.message)
