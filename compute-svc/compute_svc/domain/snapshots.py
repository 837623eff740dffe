"""``createImage``: a snapshot of a server's root disk as a new image of its project.

The request makes the image (``queued``, ``image_type=snapshot``, ``instance_uuid``,
``base_image_ref`` and the base image's properties, as Nova's) and moves the server's
``task_state`` to ``image_snapshot`` with an owner and a deadline (``snapshot_timeout_s``)
in one transaction; Nova's 202 names the image. The flow then has the server's host
copy the disk (overlay and base as one standalone qcow2; a running guest is paused for
the copy) into the image store's staging file (``saving``), hashes it into place and
makes the image ``active``. A failed snapshot deletes its image; either way the server
keeps its status. One whose flow died is the sweeper's (``expired``): the task cleared,
the unfinished image deleted, the action ended with the fault.

    image_id = await request(deps, ctx, server_id, {"name": "snap", "metadata": {}})

``take`` is the copy alone, for ``shelve``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context
from common_rpc.errors import RpcError

from ..db.models import Image, Server
from ..wiring import Deps
from . import actions, images, servers
from .common import new_id, nova_name, transaction
from .errors import bad_field
from .image_store import Stored
from .tasks import load, server_context

log = logging.getLogger(__name__)

CREATE_IMAGE = actions.CREATE_IMAGE
FROM = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED")
TASK, UPLOADING = "image_snapshot", "image_uploading"
TASKS = (TASK, UPLOADING)
# Base image properties a snapshot does not inherit (Nova's non-inheritable ones, and
# the ones a snapshot sets itself).
NOT_INHERITED = {
    images.HIDDEN, "image_type", "instance_uuid", "base_image_ref", "image_location",
    "image_state", "owner_id", "user_id", "img_signature", "img_signature_hash_method",
    "img_signature_key_type", "img_signature_certificate_uuid",
}  # fmt: skip


class SnapshotFailed(Exception):
    """The copy or its upload failed; the message is the action's fault."""


def parse(args: Any, action: str = CREATE_IMAGE) -> tuple[str, dict[str, str]]:
    """Nova's ``createImage`` body: ``name`` (required) and ``metadata``."""
    if not isinstance(args, dict):
        raise bad_field(action, args, f"{args!r} is not of type 'object'")
    unknown = sorted(set(args) - {"name", "metadata"})
    if unknown:
        raise bad_field(action, args, f"Additional properties are not allowed ({unknown})")
    if "name" not in args:
        raise bad_field(action, args, "'name' is a required property")
    return nova_name(args), servers.metadata(args.get("metadata"))


async def new_image(
    session: AsyncSession, server: Server, name: str, extra: dict[str, str]
) -> Image:
    """The snapshot's image, ``queued``, of the server's project (private)."""
    base = await session.get(Image, server.image_id) if server.image_id else None
    props = {
        k: v
        for k, v in ((base.properties if base else None) or {}).items()
        if k not in NOT_INHERITED
    }
    if base is not None and base.disk_format == "aki" and "kernel_id" not in props:
        props["kernel_id"] = base.id  # the snapshot boots the kernel its server did
    props |= {
        "image_type": "snapshot",
        "instance_uuid": server.id,
        "base_image_ref": server.image_id or "",
        "owner_id": server.project_id,
        "user_id": server.user_id or "",
    }
    # The request's metadata last: it wins, as in Nova (Tempest sets image_type=test).
    props |= {k: str(v) for k, v in extra.items()}
    image = Image(
        id=new_id(),
        owner=server.project_id,
        name=name,
        status="queued",
        disk_format="qcow2",
        container_format="bare",
        visibility="private",
        protected=False,
        min_disk=server.disk_gb,
        min_ram=base.min_ram if base is not None else 0,
        tags=[],
        properties=props,
    )
    session.add(image)
    await session.flush()
    return image


def deadline(deps: Deps) -> datetime:
    """The copy's own timeout and the calls around it."""
    slack = deps.settings.rpc_timeout_s * 2
    return datetime.now(UTC) + timedelta(seconds=deps.settings.snapshot_timeout_s + slack)


async def request(deps: Deps, ctx: RequestContext, server_id: str, args: Any) -> str:
    """The image made and the server's task moved in the request's transaction (404,
    then 400 for the body, 409 unless ACTIVE, SHUTOFF, PAUSED or SUSPENDED with no task
    under way); the copy after. The image's id."""
    name, extra = parse(args)
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        if server.status not in FROM or server.task_state is not None or not server.host:
            raise servers.conflict_state(server, CREATE_IMAGE)
        image = await new_image(session, server, name, extra)
        moved = await servers.move(
            session,
            server.id,
            expected=(server.status,),
            when_task=None,
            task_state=TASK,
            task_owner=deps.instance,
            task_deadline=deadline(deps),
        )
        if not moved:
            raise servers.conflict_state(server, CREATE_IMAGE)
        await actions.record(session, server, CREATE_IMAGE)
        await servers.emit(session, server, "snapshot", "start")
        session.expunge(server)
    with use_context(server_context(server)):
        deps.tasks.start(server.id, snapshot(deps, server.id, image.id, server.status))
    return image.id


async def take(deps: Deps, server: Server, image_id: str) -> None:
    """The host copies the server's root disk into the image (queued -> saving ->
    active). Raises SnapshotFailed, the image and its data deleted."""
    try:
        async with transaction(deps.runtime.sessions) as session:
            if not await images.swap(session, image_id, "queued", "saving"):
                raise SnapshotFailed(f"Image {image_id} is gone or not queued.")
        if not server.host:
            raise SnapshotFailed(f"Server {server.id} is on no host.")
        target = str(deps.images.staging(image_id))
        await deps.agent(server.host).snapshot(
            server.id, target, timeout=deps.settings.snapshot_timeout_s
        )
        stored: Stored = await asyncio.to_thread(deps.images.adopt, image_id)
        async with transaction(deps.runtime.sessions) as session:
            if not await images.finish_upload(session, image_id, stored):
                raise SnapshotFailed(f"Image {image_id} was deleted during the snapshot.")
    except (RpcError, OSError, SnapshotFailed) as exc:
        why = getattr(exc, "message", None) or str(exc)
        await drop_image(deps, image_id)
        raise SnapshotFailed(f"Snapshot failed: {why}") from exc
    except BaseException:
        await drop_image(deps, image_id)
        raise


async def drop_image(deps: Deps, image_id: str) -> None:
    """Compensation: an unfinished snapshot's image and data are deleted."""
    async with transaction(deps.runtime.sessions) as session:
        await images.discard(session, image_id)
    deps.images.delete(image_id)


async def snapshot(deps: Deps, server_id: str, image_id: str, status: str) -> None:
    """The flow after ``request``: the copy, then the server's task cleared (its status
    as it was) and the action ended, with the fault when it failed."""
    failed: str | None = None
    server = await load(deps, server_id)
    try:
        if server is None:
            raise SnapshotFailed(f"Server {server_id} is gone.")
        await take(deps, server, image_id)
    except SnapshotFailed as exc:
        failed = str(exc)
        log.warning("snapshot of %s into %s failed: %s", server_id, image_id, failed)
    async with transaction(deps.runtime.sessions) as session:
        moved = await servers.move(
            session,
            server_id,
            expected=(status,),
            when_task=TASK,
            owner=deps.instance,
            task_state=None,
            task_owner=None,
            task_deadline=None,
        )
        if moved:
            await actions.finish(session, server_id, CREATE_IMAGE, fault=failed)
            row = await session.get(Server, server_id)
            if row is not None and failed is None:
                await servers.emit(session, row, "snapshot", "end")


async def unfinished(session: AsyncSession, server_id: str) -> list[Image]:
    """The snapshot images of the server not yet active (what a dead flow left)."""
    rows = await session.scalars(select(Image).where(Image.status.in_(("queued", "saving"))))
    # By the server only: the request's metadata may have set its own image_type.
    return [r for r in rows if (r.properties or {}).get("instance_uuid") == server_id]


async def expired(deps: Deps, session: AsyncSession, row: Server) -> None:
    """The sweeper's: a snapshot whose flow died past its deadline. The task cleared,
    the status kept, its unfinished image and data deleted, the action's fault."""
    for image in await unfinished(session, row.id):
        await images.discard(session, image.id)
        deps.images.delete(image.id)
    row.task_state = None
    row.task_owner = None
    row.task_deadline = None
    why = "The snapshot of the server did not finish within its deadline."
    await actions.finish(session, row.id, CREATE_IMAGE, fault=why)
