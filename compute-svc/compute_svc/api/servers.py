"""``/v2.1/servers``: create (202, the boot runs after), list, show, update, delete, actions."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from common_rpc.context import current_context, use_context
from common_rpc.errors import NotFound, RpcError

from ..db.models import Server, VolumeAttachment
from ..domain import (
    actions,
    boot,
    deletion,
    floating_ips,
    power,
    quotas,
    security_groups,
    servers,
    volumes,
)
from ..domain.common import envelope, try_insert
from ..domain.errors import bad_field, conflict, invalid, not_found
from ..domain.networks import check_attach, find_network, network_of_port
from ..domain.tasks import server_context
from .common import Call, base_url, links, page, transaction

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])
REBOOT_TYPES = ("HARD", "Hard", "hard", "SOFT", "Soft", "soft")


def _link(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    return links(request, collection, item_id)


async def _views(request: Request, call: Call, rows: list[Server]) -> list[dict[str, Any]]:
    volumes = await servers.attachments(call.session, [r.id for r in rows])
    floating = await floating_ips.of_servers(call.session, rows)
    link = partial(_link, request)
    return [servers.view(r, call.ctx, link, volumes[r.id], floating) for r in rows]


async def _check_ports(deps: Any, spec: dict[str, Any]) -> None:
    """Given networks must be ones the caller may use, given ports the caller's and free,
    and none of their networks external unless the caller is an admin (400 / 409 / 403
    now, as Nova answers, not an ERROR later). network-svc down: the boot is taken, and
    fails with a fault."""
    found = []
    for wanted in servers.requested_networks(spec.get("networks")):
        if "port_id" not in wanted:
            found.append(await find_network(deps, wanted["network_id"]))
            continue
        try:
            port = await deps.network.get_port(wanted["port_id"])
        except NotFound:
            raise invalid(f"Port id {wanted['port_id']} could not be found.") from None
        if port.get("device_id"):
            raise conflict(f"Port {wanted['port_id']} is still in use.")
        found.append(await network_of_port(deps, port))
    check_attach(current_context(), found)


@router.post("", status_code=202)
async def create_server(request: Request, body: Any = Body(None)) -> JSONResponse:
    deps = request.app.state.deps
    spec = envelope(body, "server")
    servers.check_create(spec)  # Nova's schema first: nothing is looked up for a bad body
    wanted = security_groups.requested(spec.get("security_groups"))
    await _check_ports(deps, spec)
    groups = None
    if wanted is not None:
        # Found now, as the caller: an unknown group is a 400 and nothing is made.
        project_id = current_context().project_id or ""
        found = await security_groups.find(deps, wanted, project_id=project_id, status=400)
        groups = security_groups.brief(found)
    async with transaction(request) as call:
        server, admin_pass = await servers.create(
            call.session,
            call.ctx,
            spec,
            owner=deps.instance,
            build_timeout_s=call.settings.build_timeout_s,
            quota_defaults=quotas.defaults(call.settings),
            security_groups=groups,
        )
        await actions.record(call.session, server, actions.CREATE)
    boot.start_boot(deps, server)
    out = {
        "id": server.id,
        "links": links(request, "servers", server.id),
        "OS-DCF:diskConfig": "MANUAL",
        # Nova echoes what was asked for (the ports are not made yet).
        "security_groups": [{"name": name} for name in wanted or ["default"]],
        "adminPass": admin_pass,
    }
    location = f"{base_url(request)}/v2.1/servers/{server.id}"
    return JSONResponse({"server": out}, status_code=202, headers={"Location": location})


async def _listing(request: Request, detail: bool) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        rows = await servers.list_all(call.session, call.ctx, dict(request.query_params))
        if detail:
            items = await _views(request, call, rows)
        else:
            items = [
                {"id": r.id, "name": r.name, "links": links(request, "servers", r.id)} for r in rows
            ]
    return page(request, "servers", items)


@router.get("")
async def list_servers(request: Request) -> dict[str, Any]:
    return await _listing(request, detail=False)


@router.get("/detail")
async def list_servers_detail(request: Request) -> dict[str, Any]:
    return await _listing(request, detail=True)


@router.get("/{server_id}")
async def show_server(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        return {"server": (await _views(request, call, [server]))[0]}


@router.put("/{server_id}")
async def update_server(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    async with transaction(request) as call:
        server = await servers.update_server(
            call.session, call.ctx, server_id, envelope(body, "server")
        )
        full = (await _views(request, call, [server]))[0]
    return {"server": {k: v for k, v in full.items() if k in servers.UPDATE_VIEW_KEYS}}


@router.delete("/{server_id}", status_code=204)
async def delete_server(request: Request, server_id: str) -> Response:
    deps = request.app.state.deps
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        started = await deletion.request_delete(call.session, deps, server)
    if started:
        deletion.start_delete(deps, server)
    return Response(status_code=204)


@router.get("/{server_id}/ips")
async def server_ips(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        floating = await floating_ips.of_servers(call.session, [server])
    addresses = {
        net: [{"addr": a["addr"], "version": a["version"]} for a in entries]
        for net, entries in servers.addresses(server, floating).items()
    }
    return {"addresses": addresses}


@router.get("/{server_id}/metadata")
async def show_metadata(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        return {"metadata": dict(server.meta or {})}


@router.put("/{server_id}/metadata")
@router.post("/{server_id}/metadata")
async def set_metadata(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    if not isinstance(body, dict) or "metadata" not in body:
        raise invalid("Invalid input: expected an object under 'metadata'.")
    async with transaction(request) as call:
        server = await servers.set_metadata(
            call.session, call.ctx, server_id, body["metadata"], replace=request.method == "PUT"
        )
        return {"metadata": dict(server.meta or {})}


@router.post("/{server_id}/action", response_model=None)
async def server_action(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    """One action per body: os-start, os-stop, reboot, os-getConsoleOutput,
    addSecurityGroup, removeSecurityGroup."""
    if not isinstance(body, dict) or len(body) != 1:
        raise invalid("Invalid input: expected exactly one action.")
    action, args = next(iter(body.items()))
    deps = request.app.state.deps
    if action == "os-getConsoleOutput":
        return await _console(request, server_id, args)
    if action in ("addSecurityGroup", "removeSecurityGroup"):
        return await _security_group_action(request, server_id, action, args)
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        if action in ("os-start", "os-stop"):
            verb = action.removeprefix("os-")
            if not await power.begin_power(call.session, server, verb):
                raise servers.conflict_state(server, action)
            start = partial(power.start_power, deps, server, verb)
        elif action == "reboot":
            hard = _reboot_type(args) == "HARD"
            if not await power.begin_reboot(call.session, deps, server, hard):
                raise servers.conflict_state(server, action)
            start = partial(power.start_reboot, deps, server, hard)
        else:
            raise invalid(f"There is no such action: {action}")
    start()
    return Response(status_code=202)


def _reboot_type(args: Any) -> str:
    """``{"type": "SOFT"|"HARD"}`` (any of Nova's spellings), refused in its words."""
    if not isinstance(args, dict):
        raise bad_field("reboot", args, f"{args!r} is not of type 'object'")
    if "type" not in args:
        raise bad_field("reboot", args, "'type' is a required property")
    kind = args["type"]
    if kind not in REBOOT_TYPES:
        raise bad_field("type", kind, f"{kind!r} is not one of {list(REBOOT_TYPES)!r}")
    return str(kind).upper()


async def _security_group_action(
    request: Request, server_id: str, action: str, args: Any
) -> Response:
    """The group goes on (or off) every port of the server, through the network service."""
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        call.session.expunge(server)
    name = security_groups.action_name(args)
    if server.status in ("BUILD", "DELETING"):
        # Its ports are being made or released: the change could miss one.
        raise servers.conflict_state(server, action)
    deps = request.app.state.deps
    if action == "addSecurityGroup":
        await security_groups.add(deps, server, name)
    else:
        await security_groups.remove(deps, server, name)
    return Response(status_code=202)


@router.get("/{server_id}/os-security-groups")
async def server_security_groups(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        call.session.expunge(server)
    groups = await security_groups.details(request.app.state.deps, server)
    return {"security_groups": groups}


async def _console(request: Request, server_id: str, args: Any) -> dict[str, Any]:
    length = (args or {}).get("length") if isinstance(args, dict) else None
    if length is not None:
        try:
            length = int(length)
        except (TypeError, ValueError):
            raise invalid("Invalid input for field/attribute length.") from None
        length = None if length < 0 else length
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
    if not server.host or server.status not in ("ACTIVE", "SHUTOFF", "REBOOT", "HARD_REBOOT"):
        raise conflict(f"Cannot get console output of instance {server_id} in {server.status}.")
    reply = await request.app.state.deps.agent(server.host).console_output(server_id, length)
    output = reply.get("output", "") if isinstance(reply, dict) else str(reply)
    return {"output": output}


# ---------------------------------------------------------------- volume attachments


def _attachment(row: VolumeAttachment) -> dict[str, Any]:
    return {
        "id": row.volume_id,
        "serverId": row.server_id,
        "volumeId": row.volume_id,
        "device": row.device,
    }


@router.get("/{server_id}/os-volume_attachments")
async def list_attachments(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        await servers.get(call.session, call.ctx, server_id)
        rows = await call.session.scalars(
            select(VolumeAttachment).where(VolumeAttachment.server_id == server_id)
        )
        return {"volumeAttachments": [_attachment(r) for r in rows]}


@router.get("/{server_id}/os-volume_attachments/{volume_id}")
async def show_attachment(request: Request, server_id: str, volume_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        await servers.get(call.session, call.ctx, server_id)
        row = await call.session.get(VolumeAttachment, (server_id, volume_id))
        if row is None:
            raise not_found("Volume attachment", volume_id)
        return {"volumeAttachment": _attachment(row)}


def _next_device(taken: set[str]) -> str:
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"/dev/vd{letter}" not in taken:
            return f"/dev/vd{letter}"
    raise conflict("No free device name for another volume.")


@router.post("/{server_id}/os-volume_attachments")
async def attach_volume(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    spec = envelope(body, "volumeAttachment")
    volume_id = spec.get("volumeId")
    if not isinstance(volume_id, str) or not volume_id:
        raise invalid("Invalid input for field/attribute volumeId.")
    deps = request.app.state.deps
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        if server.status not in ("ACTIVE", "SHUTOFF") or not server.host or server.task_state:
            raise servers.conflict_state(server, "attach_volume")
        taken = set(
            await call.session.scalars(
                select(VolumeAttachment.device).where(VolumeAttachment.server_id == server_id)
            )
        )
        row = VolumeAttachment(
            server_id=server_id,
            volume_id=volume_id,
            device=_next_device(taken),
            status="attaching",
            connection={},
        )
        if not await try_insert(call.session, row):
            raise invalid(f"Volume {volume_id} is already attached or attaching.")
        call.session.expunge(server)
    try:
        row.device = await volumes.attach(deps, server, volume_id, row.device)
    except RpcError as exc:
        # The attach was undone (volume available, no export, no secret): the tenant gets
        # why; an unavailable or silent service stays a 503/504.
        if exc.http_status in (400, 404, 409, 500):
            raise invalid(f"Volume {volume_id} could not be attached: {exc}") from None
        raise
    return {"volumeAttachment": _attachment(row)}


@router.delete("/{server_id}/os-volume_attachments/{volume_id}", status_code=202)
async def detach_volume(request: Request, server_id: str, volume_id: str) -> Response:
    """202 once the volume is ``detaching``; the host unplugs it after (asking the guest
    again while it holds it), and a failure shows in ``os-instance-actions``."""
    deps = request.app.state.deps
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        job = await volumes.request_detach(call.session, deps, server, volume_id)
        call.session.expunge(server)
    with use_context(server_context(server)):
        await volumes.begin_detaching(deps, server, volume_id, job)
    volumes.start_detach(deps, server, volume_id, job)
    return Response(status_code=202)
