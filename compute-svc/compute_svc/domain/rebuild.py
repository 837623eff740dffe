"""``rebuild``: the server made again on its host from the same or another image.

Ports, fixed IPs, volumes and the host stay; the domain and root disk are made again
with a new config drive (its metadata and name as the request changed them). REBUILD
with a deadline (``build_timeout_s``) the sweeper watches (``moves.expired``: ERROR);
a failed rebuild is ERROR with its fault, as in Nova. Events
``compute.server.rebuild.start``/``.end``; the instance action ``rebuild``.

    admin_pass, server = await request(deps, ctx, server_id, {"imageRef": image_id})
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from common_rpc.context import RequestContext, use_context
from common_rpc.errors import RpcError

from ..db.models import Image, Server
from ..wiring import Deps
from . import actions, servers
from .common import nova_name, transaction
from .desired import server_state
from .errors import bad_field, invalid
from .tasks import fault, power_code, server_context

log = logging.getLogger(__name__)

REBUILD = "rebuild"
FROM = ("ACTIVE", "SHUTOFF", "ERROR")
KEYS = {"imageRef", "adminPass", "name", "metadata", "accessIPv4", "accessIPv6"}
KEYS |= {"OS-DCF:diskConfig", "preserve_ephemeral"}


def _args(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise bad_field("rebuild", args, f"{args!r} is not of type 'object'")
    if "imageRef" not in args:
        raise bad_field("rebuild", args, "'imageRef' is a required property")
    unknown = set(args) - KEYS
    if unknown:
        extra = sorted(unknown)
        raise bad_field("rebuild", args, f"Additional properties are not allowed ({extra})")
    ref = args["imageRef"]
    if not isinstance(ref, str) or not ref:
        raise bad_field("imageRef", ref, f"{ref!r} is not a 'uuid'")
    if "adminPass" in args and not isinstance(args["adminPass"], str):
        raise bad_field("adminPass", args["adminPass"], "is not of type 'string'")
    if "name" in args:
        nova_name(args)
    return args


async def request(deps: Deps, ctx: RequestContext, server_id: str, args: Any) -> tuple[str, Server]:
    """REBUILD in the request's transaction (400 for the body or an image that cannot
    boot, 409 unless ACTIVE, SHUTOFF or ERROR); the flow after. Its admin password (the
    one given, else a new one, as Nova answers it) and the server."""
    body = _args(args)
    image_id = body["imageRef"].rsplit("/", 1)[-1]
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        image = await session.get(Image, image_id)
        if (
            image is None
            or image.status != "active"
            or (image.visibility == "private" and image.owner != server.project_id)
        ):
            raise invalid(f"Image {image_id} could not be found.")
        if server.status not in FROM or server.task_state is not None or not server.host:
            raise servers.conflict_state(server, REBUILD)
        values: dict[str, Any] = {"image_id": image.id}
        if "name" in body:
            values["name"] = body["name"]
        if "metadata" in body:
            values["meta"] = servers.metadata(body["metadata"])
        for key, column in (("accessIPv4", "access_ipv4"), ("accessIPv6", "access_ipv6")):
            if key in body:
                values[column] = servers.access_ip(body, key)
        old = server.status if server.status != "ERROR" else "ACTIVE"
        moved = await servers.move(
            session,
            server.id,
            expected=FROM,
            when_task=None,
            status="REBUILD",
            task_state="rebuilding",
            vm_state="stopped" if old == "SHUTOFF" else "active",
            task_owner=deps.instance,
            task_deadline=datetime.now(UTC) + timedelta(seconds=deps.settings.build_timeout_s),
            fault=None,
            **values,
        )
        if not moved:
            raise servers.conflict_state(server, REBUILD)
        await session.refresh(server)
        await servers.emit(session, server, REBUILD, "start")
        await actions.record(session, server, REBUILD)
        session.expunge(server)
    with use_context(server_context(server)):
        deps.tasks.start(server.id, rebuild(deps, server.id, stopped=old == "SHUTOFF"))
    return body.get("adminPass") or secrets.token_urlsafe(9), server


async def rebuild(deps: Deps, server_id: str, stopped: bool) -> None:
    """The host makes the domain again from the new image; ACTIVE (SHUTOFF as it was),
    or ERROR with the fault."""
    failed: str | None = None
    power = 4 if stopped else 1
    try:
        async with transaction(deps.runtime.sessions) as session:
            server = await session.get(Server, server_id)
            if server is None or server.status != "REBUILD" or not server.host:
                return
            host = server.host
            server.generation = server.generation + 1
            await session.flush()
            desired = await server_state(session, deps.images, server)
        agent = deps.agent(host)
        reply = await agent.rebuild(desired, timeout=deps.settings.spawn_timeout_s)
        power = power_code(reply.power_state, 1)
        if stopped:
            power = power_code((await agent.power(server_id, "stop")).power_state, 4)
    except (RpcError, ValueError, LookupError) as exc:
        failed = f"Rebuild failed: {getattr(exc, 'message', None) or exc}"
        log.warning("rebuild of %s failed: %s", server_id, failed)
    async with transaction(deps.runtime.sessions) as session:
        values: dict[str, Any] = (
            {"status": "ERROR", "vm_state": "error", "fault": fault(failed)}
            if failed
            else {
                "status": "SHUTOFF" if stopped else "ACTIVE",
                "vm_state": "stopped" if stopped else "active",
                "power_state": power,
                "launched_at": datetime.now(UTC),
            }
        )
        moved = await servers.move(
            session,
            server_id,
            expected=("REBUILD",),
            task_state=None,
            task_owner=None,
            task_deadline=None,
            **values,
        )
        if not moved:
            return
        row = await session.get(Server, server_id)
        if row is not None:
            await servers.emit(session, row, REBUILD, "end")
        await actions.finish(session, server_id, REBUILD, fault=failed)
