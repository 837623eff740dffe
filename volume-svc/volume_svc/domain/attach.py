"""The attach/detach contract compute calls on the ``volume`` topic.

    reserve -> initialize_connection(connector) -> attach        (available -> in-use)
    begin_detaching -> terminate_connection(connector) -> detach (in-use -> available)
    unreserve                                                    (undo a failed attach)
    roll_detaching                                               (undo a failed detach)

Each step runs as the caller's project (a volume of another project is not found) and
moves the status by compare-and-swap. An export is recorded before the agent makes it
and forgotten only after the agent checked the target is gone: the database never
claims less than the host has, so reconcile and the audit can always see a leak.
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.chassis.sweeper import transition
from common_rpc.context import RequestContext
from common_rpc.contracts.volume import (
    ConnectionInfo,
    ConnectionTerminated,
    Connector,
    IscsiConnectionData,
    VolumeInfo,
)
from common_rpc.errors import RpcError

from .. import events
from ..contracts import DesiredExport, HostState
from ..db.models import Attachment, Volume, VolumeExport, utcnow
from ..wiring import Deps
from . import states, volumes
from .common import new_id, transaction
from .errors import invalid

ATTACH_DEADLINE = timedelta(minutes=10)
_IQN = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:\S+)?|eui\.[0-9A-Fa-f]{16})$")


def _initiator(connector: Connector) -> str:
    value = connector.initiator
    if len(value) > 223 or not _IQN.match(value):
        raise invalid("The connector needs a valid iSCSI 'initiator' name (iqn.YYYY-MM.…).")
    return value


async def get_volume(deps: Deps, ctx: RequestContext, volume_id: str) -> VolumeInfo:
    async with transaction(deps.sessions) as session:
        return volumes.info(await volumes.get(session, ctx, volume_id), ctx)


async def reserve(deps: Deps, ctx: RequestContext, volume_id: str) -> VolumeInfo:
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        await states.move(
            session, vol, "reserve", to="reserved", owner=vol.host, deadline=ATTACH_DEADLINE
        )
        return volumes.info(vol, ctx)


async def initialize_connection(
    deps: Deps, ctx: RequestContext, volume_id: str, connector: Connector
) -> ConnectionInfo:
    """Export the volume to the connector's initiator only; answer libvirt's iSCSI info."""
    initiator = _initiator(connector)
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        states.check(vol, "initialize_connection")
        if vol.status == "reserved":
            await states.move(
                session, vol, "initialize_connection", to="attaching", owner=vol.host,
                deadline=ATTACH_DEADLINE,
            )  # fmt: skip
        safe = connector.model_dump(include={"initiator", "host", "ip"}, exclude_none=True)
        export = await session.get(VolumeExport, volume_id)
        if export is None:
            session.add(VolumeExport(volume_id=volume_id, initiator=initiator, connector=safe))
        elif export.initiator != initiator and vol.status == "in-use":
            raise invalid(f"Volume {volume_id} is attached and exported to another initiator.")
        else:
            export.initiator, export.connector, export.removing = initiator, safe, False
        await session.flush()
        host, secret = vol.host, vol.chap_secret
    try:
        info = await deps.agent(host).export_volume(volume_id, initiator, secret)
    except RpcError:
        # Keep the caller's error; a removal that fails too leaves the mark for reconcile.
        with contextlib.suppress(RpcError):
            await forget_export(deps, volume_id, host)
        raise
    return ConnectionInfo(
        driver_volume_type="iscsi",
        data=IscsiConnectionData(
            target_iqn=info.target_iqn,
            target_portal=info.target_portal,
            target_lun=info.target_lun,
            target_discovered=False,
            volume_id=volume_id,
            auth_method="CHAP",
            auth_username=info.auth_username,
            auth_password=secret,
        ),
    )


async def forget_export(deps: Deps, volume_id: str, host: str) -> None:
    """Mark the export as going, remove the target (the agent checks it is gone), then the row.

    Marked first, so a reconcile reading the database meanwhile removes the target rather
    than re-making it; if the removal fails, the mark stays and the next reconcile (or
    this call, retried) finishes it.
    """
    async with transaction(deps.sessions) as session:
        await session.execute(
            update(VolumeExport).where(VolumeExport.volume_id == volume_id).values(removing=True)
        )
    await deps.agent(host).unexport_volume(volume_id)
    async with transaction(deps.sessions) as session:
        await session.execute(delete(VolumeExport).where(VolumeExport.volume_id == volume_id))


async def attach(
    deps: Deps,
    ctx: RequestContext,
    volume_id: str,
    server_id: str,
    mountpoint: str,
    host: str,
) -> VolumeInfo:
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        att = vol.attachment
        if vol.status == "in-use" and att is not None and att.server_id == server_id:
            return volumes.info(vol, ctx)  # attached already, by this very request
        if att is not None:
            # The attachments API holds it (its reservation is not compute's).
            raise invalid(f"Volume {volume_id} has an attachment already ({att.id}).")
        await states.move(session, vol, "attach", to="in-use")
        session.add(
            Attachment(
                id=new_id(), volume_id=volume_id, server_id=server_id, host_name=host,
                mountpoint=mountpoint, attached_at=utcnow(),
            )
        )  # fmt: skip
        await session.flush()
        await session.refresh(vol)
        await volumes.emit(session, ctx, vol, events.ATTACH)
        return volumes.info(vol, ctx)


async def begin_detaching(deps: Deps, ctx: RequestContext, volume_id: str) -> VolumeInfo:
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        await states.move(
            session, vol, "begin_detaching", to="detaching", owner=vol.host,
            deadline=ATTACH_DEADLINE,
        )  # fmt: skip
        return volumes.info(vol, ctx)


async def roll_back_detaching(deps: Deps, ctx: RequestContext, volume_id: str) -> VolumeInfo:
    """``roll_detaching`` over RPC: the volume as it is afterwards."""
    async with transaction(deps.sessions) as session:
        return volumes.info(await roll_detaching(session, ctx, volume_id), ctx)


async def roll_detaching(session: AsyncSession, ctx: RequestContext, volume_id: str) -> Volume:
    """Cinder's ``roll_detaching``: a volume still ``detaching`` (its detach failed, the
    guest kept the disk) is ``in-use`` again; in any other status nothing changes."""
    vol = await volumes.get(session, ctx, volume_id)
    expected = states.VOLUME_FROM["roll_detaching"]
    moved = await transition(
        session, Volume, vol.id, expected=expected, to="in-use", updated_at=utcnow()
    )
    await session.refresh(vol)
    if moved:
        await volumes.emit(session, ctx, vol, events.UPDATE)
    return vol


async def terminate_connection(
    deps: Deps, ctx: RequestContext, volume_id: str, connector: Connector
) -> ConnectionTerminated:
    """Remove the export; the agent raises if the target is still there afterwards."""
    _initiator(connector)
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        host = vol.host
    await forget_export(deps, volume_id, host)
    return ConnectionTerminated(volume_id=volume_id, terminated=True)


async def detach(deps: Deps, ctx: RequestContext, volume_id: str, server_id: str) -> VolumeInfo:
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        if vol.status == "available" and vol.attachment is None:
            return volumes.info(vol, ctx)  # detached already
        states.check(vol, "detach")
        att = vol.attachment
        if att is not None and att.server_id != server_id:
            raise invalid(f"Volume {volume_id} is not attached to server {server_id}.")
        host, exported = vol.host, vol.export is not None
    if exported:
        # An export outliving its attachment would let another tenant reach the data.
        await forget_export(deps, volume_id, host)
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        await states.move(session, vol, "detach", to="available")
        await session.execute(delete(Attachment).where(Attachment.volume_id == volume_id))
        await session.refresh(vol)
        await volumes.emit(session, ctx, vol, events.DETACH)
        return volumes.info(vol, ctx)


async def unreserve(deps: Deps, ctx: RequestContext, volume_id: str) -> VolumeInfo:
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        if vol.status == "available":
            return volumes.info(vol, ctx)
        states.check(vol, "unreserve")
        if vol.attachment is not None:
            # Reserved through the attachments API: deleting that attachment frees it.
            raise invalid(f"Volume {volume_id} is reserved by attachment {vol.attachment.id}.")
        host, exported = vol.host, vol.export is not None
    if exported:
        await forget_export(deps, volume_id, host)
    async with transaction(deps.sessions) as session:
        vol = await volumes.get(session, ctx, volume_id)
        await states.move(session, vol, "unreserve", to="available")
        return volumes.info(vol, ctx)


async def host_state(deps: Deps, host: str) -> HostState:
    """What the agent of ``host`` must export (with CHAP secrets): service identity only."""
    async with transaction(deps.sessions) as session:
        rows = await session.execute(
            select(Volume.id, Volume.chap_secret, VolumeExport.initiator)
            .join(VolumeExport, VolumeExport.volume_id == Volume.id)
            .where(Volume.host == host, VolumeExport.removing.is_(False))
            .order_by(Volume.id)
        )
        exports = [
            DesiredExport(volume_id=vid, chap_secret=secret, initiator=initiator)
            for vid, secret, initiator in rows
        ]
        volume_ids = list(
            await session.scalars(select(Volume.id).where(Volume.host == host).order_by(Volume.id))
        )
    return HostState(host=host, volumes=volume_ids, exports=exports)
