"""The data-plane half of each change: call the volume's agent, then settle the row.

The API commits the row in its transitional status (``creating``, ``deleting``,
``extending``) and answers 202; these flows run after it. Success moves the row on and
writes the ``.end`` event in one transaction; failure moves it to the matching error
status and releases what it took. A process that dies mid-flow leaves the row past its
deadline: the sweeper moves it to the error status.
"""

from __future__ import annotations

import logging

from common_rpc.context import RequestContext
from common_rpc.errors import RpcError

from .. import events
from ..db.models import Snapshot, Volume
from ..wiring import Deps
from . import quotas, snapshots, states, volumes
from .common import transaction

log = logging.getLogger(__name__)


async def finish_create(deps: Deps, ctx: RequestContext, volume_id: str) -> None:
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host, size = vol.host, vol.size
        snapshot_id, source_id = vol.snapshot_id, vol.source_volid
    try:
        await deps.agent(host).create_volume(
            volume_id, size, snapshot_id=snapshot_id, source_volume_id=source_id
        )
        status = "available"
    except RpcError as exc:
        log.warning("creating volume %s on %s failed: %s", volume_id, host, exc)
        status = "error"
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        await states.move(session, vol, "create_done", to=status)
        if status == "available":
            await volumes.emit(session, ctx, vol, events.CREATE)


async def finish_delete(deps: Deps, ctx: RequestContext, volume_id: str) -> None:
    """The agent removes the export (checking it is gone) and the file; then the row goes."""
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host = vol.host
    try:
        await deps.agent(host).delete_volume(volume_id)
    except RpcError as exc:
        log.warning("deleting volume %s on %s failed: %s", volume_id, host, exc)
        async with transaction(deps.sessions) as session:
            vol = await session.get(Volume, volume_id)
            if vol is not None:
                await states.move(session, vol, "delete_failed", to="error_deleting")
        return
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        vol.status = "deleted"
        await volumes.emit(session, ctx, vol, events.DELETE)
        await quotas.release(session, vol.project_id, {"volumes": 1, "gigabytes": vol.size})
        await session.delete(vol)


async def finish_extend(deps: Deps, ctx: RequestContext, volume_id: str, new_size: int) -> None:
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        host, old = vol.host, vol.size
    try:
        await deps.agent(host).extend_volume(volume_id, new_size)
        ok = True
    except RpcError as exc:
        log.warning("extending volume %s on %s failed: %s", volume_id, host, exc)
        ok = False
    async with transaction(deps.sessions) as session:
        vol = await session.get(Volume, volume_id)
        if vol is None:
            return
        if ok:
            await states.move(session, vol, "extend_done", to="available", size=new_size)
            await volumes.emit(session, ctx, vol, events.EXTEND)
        else:
            await states.move(session, vol, "extend_done", to="error_extending")
            await quotas.release(session, vol.project_id, {"gigabytes": new_size - old})


async def finish_snapshot(deps: Deps, ctx: RequestContext, snapshot_id: str) -> None:
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        host, volume_id = snap.host, snap.volume_id
    try:
        await deps.agent(host).create_snapshot(snapshot_id, volume_id)
        status = "available"
    except RpcError as exc:
        log.warning("snapshot %s of %s failed: %s", snapshot_id, volume_id, exc)
        status = "error"
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        await states.move(session, snap, "create_done", to=status)
        if status == "available":
            await snapshots.emit(session, ctx, snap, events.CREATE)


async def finish_snapshot_delete(deps: Deps, ctx: RequestContext, snapshot_id: str) -> None:
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        host = snap.host
    try:
        await deps.agent(host).delete_snapshot(snapshot_id)
    except RpcError as exc:
        log.warning("deleting snapshot %s failed: %s", snapshot_id, exc)
        async with transaction(deps.sessions) as session:
            snap = await session.get(Snapshot, snapshot_id)
            if snap is not None:
                await states.move(session, snap, "delete_failed", to="error_deleting")
        return
    async with transaction(deps.sessions) as session:
        snap = await session.get(Snapshot, snapshot_id)
        if snap is None:
            return
        snap.status = "deleted"
        await snapshots.emit(session, ctx, snap, events.DELETE)
        await quotas.release(session, snap.project_id, {"snapshots": 1, "gigabytes": snap.size})
        await session.delete(snap)
