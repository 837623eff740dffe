"""``/v2.1/servers``: create (202, the boot runs after), list, show, update, delete, actions.

The routes parse the request, call ``domain/`` and shape Nova's answer.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from common_rpc.context import current_context

from ..db.models import Server, VolumeAttachment
from ..domain import (
    boot,
    deletion,
    floating_ips,
    locking,
    moves,
    power,
    rebuild,
    security_groups,
    servers,
    shelving,
    snapshots,
    volumes,
)
from ..domain.common import envelope
from ..domain.errors import invalid
from .common import Call, base_url, links, page, transaction
from .microversion import version_of

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])


def _link(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    return links(request, collection, item_id)


async def _views(request: Request, call: Call, rows: list[Server]) -> list[dict[str, Any]]:
    volumes = await servers.attachments(call.session, [r.id for r in rows])
    floating = await floating_ips.of_servers(call.session, rows)
    link = partial(_link, request)
    version = version_of(request)
    return [
        servers.view(r, call.ctx, link, volumes[r.id], floating) | locking.view_fields(r, version)
        for r in rows
    ]


@router.post("", status_code=202)
async def create_server(request: Request, body: Any = Body(None)) -> JSONResponse:
    spec = envelope(body, "server")
    hints = body.get("os:scheduler_hints", body.get("OS-SCH-HNT:scheduler_hints"))
    made = await boot.create(request.app.state.deps, current_context(), spec, hints)
    server_id = made.server.id
    out = {
        "id": server_id,
        "links": links(request, "servers", server_id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": name} for name in made.security_groups],
        "adminPass": made.admin_pass,
    }
    location = f"{base_url(request)}/v2.1/servers/{server_id}"
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
    return {"server": servers.basic_view(full)}


@router.delete("/{server_id}", status_code=204)
async def delete_server(request: Request, server_id: str) -> Response:
    await deletion.delete_server(request.app.state.deps, current_context(), server_id)
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
        locking.check(await servers.get(call.session, call.ctx, server_id), call.ctx)
        server = await servers.set_metadata(
            call.session, call.ctx, server_id, body["metadata"], replace=request.method == "PUT"
        )
        return {"metadata": dict(server.meta or {})}


@router.get("/{server_id}/metadata/{key}")
async def show_metadata_item(request: Request, server_id: str, key: str) -> dict[str, Any]:
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        return {"meta": servers.metadata_item(server, key)}


@router.put("/{server_id}/metadata/{key}")
async def set_metadata_item(
    request: Request, server_id: str, key: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request) as call:
        locking.check(await servers.get(call.session, call.ctx, server_id), call.ctx)
        server = await servers.set_metadata_item(call.session, call.ctx, server_id, key, body)
        return {"meta": servers.metadata_item(server, key)}


@router.delete("/{server_id}/metadata/{key}", status_code=204, response_class=Response)
async def delete_metadata_item(request: Request, server_id: str, key: str) -> Response:
    async with transaction(request) as call:
        locking.check(await servers.get(call.session, call.ctx, server_id), call.ctx)
        await servers.delete_metadata_item(call.session, call.ctx, server_id, key)
    return Response(status_code=204)


@router.post("/{server_id}/action", response_model=None)
async def server_action(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    """One action per body: os-start, os-stop, reboot, os-getConsoleOutput,
    addSecurityGroup, removeSecurityGroup; admins: evacuate, migrate (then
    confirmResize or revertResize)."""
    if not isinstance(body, dict) or len(body) != 1:
        raise invalid("Invalid input: expected exactly one action.")
    action, args = next(iter(body.items()))
    deps, ctx = request.app.state.deps, current_context()
    if action in locking.ACTIONS:
        await locking.request(deps, ctx, server_id, action, args)
        return Response(status_code=202)
    if action not in locking.UNCHECKED:
        await locking.check_id(deps, ctx, server_id)
    if action == "rebuild":
        admin_pass, row = await rebuild.request(deps, ctx, server_id, args)
        async with transaction(request, write=False) as call:
            view = (await _views(request, call, [row]))[0]
        # Nova's rebuild answer is the update's view (no extended attributes) and the password.
        shown = servers.basic_view(view)
        return JSONResponse({"server": shown | {"adminPass": admin_pass}}, status_code=202)
    if action == "createImage":
        image_id = await snapshots.request(deps, ctx, server_id, args)
        location = {"Location": _image_url(request, image_id)}
        if version_of(request) >= (2, 45):  # the body instead of the header, as Nova
            return JSONResponse({"image_id": image_id}, status_code=202)
        return Response(status_code=202, headers=location)
    if action in shelving.ACTIONS:
        await shelving.request(deps, ctx, server_id, action, args)
        return Response(status_code=202)
    if action == "os-getConsoleOutput":
        output = await power.console_output(deps, ctx, server_id, _console_length(args))
        return {"output": output}
    if action in moves.ACTIONS:
        answer = await moves.request(deps, ctx, server_id, action, args)
        if answer is not None:
            return answer
        return Response(status_code=204 if action == moves.CONFIRM else 202)
    if action in ("addSecurityGroup", "removeSecurityGroup"):
        await security_groups.server_action(deps, ctx, server_id, action, args)
    else:
        await power.request(deps, ctx, server_id, action, args)
    return Response(status_code=202)


def _image_url(request: Request, image_id: str) -> str:
    """The image's Image v2 URL: ``/image`` at the public root (the gateway's, whose
    compute prefix is left out; this service's own without one)."""
    root = base_url(request)
    prefix = request.headers.get("x-forwarded-prefix", "").rstrip("/")
    if prefix and root.endswith(prefix):
        root = root[: -len(prefix)]
    return f"{root}/image/v2/images/{image_id}"


def _console_length(args: Any) -> int | None:
    """``{"length": n}``: the last ``n`` lines; none, or a negative one: all of them."""
    length = (args or {}).get("length") if isinstance(args, dict) else None
    if length is None:
        return None
    try:
        length = int(length)
    except (TypeError, ValueError):
        raise invalid("Invalid input for field/attribute length.") from None
    return None if length < 0 else length


@router.get("/{server_id}/os-security-groups")
async def server_security_groups(request: Request, server_id: str) -> dict[str, Any]:
    groups = await security_groups.of_server(request.app.state.deps, current_context(), server_id)
    return {"security_groups": groups}


# ---------------------------------------------------------------- volume attachments


def _attachment(server_id: str, volume_id: str, device: str | None) -> dict[str, Any]:
    return {"id": volume_id, "serverId": server_id, "volumeId": volume_id, "device": device}


def _attachment_of(row: VolumeAttachment) -> dict[str, Any]:
    return _attachment(row.server_id, row.volume_id, row.device)


@router.get("/{server_id}/os-volume_attachments")
async def list_attachments(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        rows = await volumes.attachments_of(call.session, call.ctx, server_id)
        return {"volumeAttachments": [_attachment_of(r) for r in rows]}


@router.get("/{server_id}/os-volume_attachments/{volume_id}")
async def show_attachment(request: Request, server_id: str, volume_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        row = await volumes.attachment(call.session, call.ctx, server_id, volume_id)
        return {"volumeAttachment": _attachment_of(row)}


@router.post("/{server_id}/os-volume_attachments")
async def attach_volume(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    volume_id = volumes.requested(envelope(body, "volumeAttachment"))
    deps = request.app.state.deps
    await locking.check_id(deps, current_context(), server_id)
    device = await volumes.attach_to(deps, current_context(), server_id, volume_id)
    return {"volumeAttachment": _attachment(server_id, volume_id, device)}


@router.delete(
    "/{server_id}/os-volume_attachments/{volume_id}", status_code=202, response_class=Response
)
async def detach_volume(request: Request, server_id: str, volume_id: str) -> Response:
    """202 once the volume is ``detaching``; the host unplugs it after (asking the guest
    again while it holds it), and a failure shows in ``os-instance-actions``."""
    await locking.check_id(request.app.state.deps, current_context(), server_id)
    await volumes.detach(request.app.state.deps, current_context(), server_id, volume_id)
    return Response(status_code=202)
