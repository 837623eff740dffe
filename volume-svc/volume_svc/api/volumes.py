"""``/v3/{project_id}/volumes``: create, list, show, update, delete and actions.

Create, delete and extend answer 202 once the row changed status; the agent's work
follows (``domain.flows``) and the status says when it is done.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from common_rpc.chassis.identity import IDENTITY_HEADER
from common_rpc.errors import NotFound

from ..domain import attach, flows, images, volumes
from ..domain.checks import field_error, required
from ..domain.errors import invalid
from .deps import (
    action_of,
    all_tenants,
    check_project,
    deps_of,
    envelope,
    known_action,
    transaction,
)
from .listing import render_list

router = APIRouter(prefix="/v3/{project_id}/volumes", tags=["volumes"])


async def _list(request: Request, project_id: str, detail: bool) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        rows = await volumes.list_all(call.session, call.ctx, all_tenants(request, call.ctx))
        items = [volumes.view(v, call.ctx, call.base) for v in rows]
        shown = items if detail else [volumes.summary(v, call.base) for v in rows]
    return render_list(request, "volumes", items, shown, kind="Volume")


@router.get("")
async def list_volumes(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=False)


@router.get("/detail")
async def list_volumes_detail(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=True)


@router.get("/summary")
async def volumes_summary(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        rows = await volumes.list_all(call.session, call.ctx, all_tenants(request, call.ctx))
        total = sum(v.size for v in rows)
    return {"volume-summary": {"total_size": total, "total_count": len(rows)}}


@router.post("", status_code=202)
async def create_volume(request: Request, project_id: str, body: Any = Body(None)) -> Any:
    """An ``imageRef`` is looked up in the image API as the caller before the row is made;
    the agent then reads its bytes with the same identity (``flows.finish_create``)."""
    fields = envelope(body, "volume")
    identity = request.headers.get(IDENTITY_HEADER)
    image = None
    if fields.get("imageRef") is not None:
        check_project(request, project_id)
        image = await images.resolve(deps_of(request).images, fields["imageRef"], identity)
    async with transaction(request, project_id) as call:
        vol = await volumes.create(call.session, call.ctx, call.settings, fields, image=image)
        out = volumes.view(vol, call.ctx, call.base, detail=False)
    call.deps.tasks.spawn(
        flows.finish_create(call.deps, call.ctx, vol.id, identity if image else None)
    )
    return {"volume": out}


@router.get("/{volume_id}")
async def show_volume(request: Request, project_id: str, volume_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        return {"volume": volumes.view(vol, call.ctx, call.base)}


@router.put("/{volume_id}")
async def update_volume(
    request: Request, project_id: str, volume_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vol = await volumes.update(call.session, call.ctx, volume_id, envelope(body, "volume"))
        return {"volume": volumes.view(vol, call.ctx, call.base, detail=False)}


@router.delete("/{volume_id}", status_code=202, response_class=Response)
async def delete_volume(request: Request, project_id: str, volume_id: str) -> Response:
    async with transaction(request, project_id) as call:
        await volumes.begin_delete(call.session, call.ctx, call.settings, volume_id)
    call.deps.tasks.spawn(flows.finish_delete(call.deps, call.ctx, volume_id))
    return Response(status_code=202)


# The actions this API serves; attaching is compute's (RPC) or the attachments API's.
ACTIONS = (
    "os-extend",
    "os-volume_upload_image",
    "os-reset_status",
    "os-roll_detaching",
    "os-set_bootable",
    "os-update_readonly_flag",
)
# Those whose argument must be an object (Cinder's schemas check it before the volume).
_OBJECT_ARGS = ("os-extend", "os-reset_status")


@router.post("/{volume_id}/action", status_code=202, response_class=Response)
async def volume_action(
    request: Request, project_id: str, volume_id: str, body: Any = Body(None)
) -> Response:
    """``os-extend``, ``os-reset_status``, ``os-roll_detaching`` (a failed detach's volume
    back to ``in-use``), ``os-set_bootable`` (200) and ``os-update_readonly_flag``.

    The volume is looked up before the action: any action on a missing volume is a 404,
    an action this API does not have on an existing one Cinder's 400.
    """
    action, args = action_of(body)
    if action == "os-volume_upload_image":
        return await _upload_image(request, project_id, volume_id, args)
    if action in _OBJECT_ARGS and not isinstance(args, dict):
        raise field_error(action, args, f"{args!r} is not of type 'object'")
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        known_action(action, ACTIONS)
        if action == "os-set_bootable":
            await volumes.set_bootable(call.session, call.ctx, vol, args)
            return Response(status_code=200)
        if action == "os-update_readonly_flag":
            await volumes.update_readonly(call.session, call.ctx, vol, args)
            return Response(status_code=202)
        if action == "os-reset_status":
            await volumes.reset_status(call.session, call.ctx, volume_id, args)
            return Response(status_code=202)
        if action == "os-roll_detaching":
            await attach.roll_detaching(call.session, call.ctx, volume_id)
            return Response(status_code=202)
        if "new_size" not in args:
            raise required(action, args, "new_size")
        vol, size = await volumes.begin_extend(
            call.session, call.ctx, call.settings, volume_id, args["new_size"]
        )
    call.deps.tasks.spawn(flows.finish_extend(call.deps, call.ctx, vol.id, size))
    return Response(status_code=202)


@router.get("/{volume_id}/metadata")
async def show_metadata(request: Request, project_id: str, volume_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        return {"metadata": dict(vol.metadata_ or {})}


@router.put("/{volume_id}/metadata")
@router.post("/{volume_id}/metadata")
async def set_metadata(
    request: Request, project_id: str, volume_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    """PUT replaces the metadata, POST merges into it (Cinder's two verbs)."""
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        raise invalid("Malformed request body: expected an object under 'metadata'.")
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        merged = body["metadata"] if request.method == "PUT" else vol.metadata_ | body["metadata"]
        vol = await volumes.update(call.session, call.ctx, volume_id, {"metadata": merged})
        return {"metadata": dict(vol.metadata_)}


@router.get("/{volume_id}/metadata/{key}")
async def show_metadata_item(
    request: Request, project_id: str, volume_id: str, key: str
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        if key not in vol.metadata_:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        return {"meta": {key: vol.metadata_[key]}}


@router.put("/{volume_id}/metadata/{key}")
async def set_metadata_item(
    request: Request, project_id: str, volume_id: str, key: str, body: Any = Body(None)
) -> dict[str, Any]:
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict) or list(meta) != [key]:
        raise invalid("Request body and URI mismatch: expected {'meta': {key: value}}.")
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        merged = vol.metadata_ | meta
        await volumes.update(call.session, call.ctx, volume_id, {"metadata": merged})
        return {"meta": meta}


@router.delete("/{volume_id}/metadata/{key}", response_class=Response)
async def delete_metadata_item(
    request: Request, project_id: str, volume_id: str, key: str
) -> Response:
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)
        if key not in vol.metadata_:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        rest = {k: v for k, v in vol.metadata_.items() if k != key}
        await volumes.update(call.session, call.ctx, volume_id, {"metadata": rest})
    return Response(status_code=200)


async def _upload_image(request: Request, project_id: str, volume_id: str, args: Any) -> Any:
    """``os-volume_upload_image``: a new image made as the caller in the image API, then
    the volume's bytes PUT to it by its agent (``flows.finish_upload``). The image is
    deleted again if the volume cannot be held for the copy."""
    async with transaction(request, project_id) as call:
        vol = await volumes.get(call.session, call.ctx, volume_id)  # a missing one: 404
        fields = images.upload_args(args)
        images.check_uploadable(vol, fields["force"])
    deps = deps_of(request)
    identity = request.headers.get(IDENTITY_HEADER) or ""
    record = {
        "name": fields["image_name"],
        "disk_format": fields["disk_format"],
        "container_format": fields["container_format"],
        "visibility": fields["visibility"],
        "protected": fields["protected"],
    }
    image = await deps.images.create(record, identity)
    try:
        async with transaction(request, project_id) as call:
            vol = await volumes.begin_upload(
                call.session, call.ctx, call.settings, volume_id, image.id, fields["force"]
            )
            out = images.upload_view(vol, image, fields)
    except BaseException:
        with contextlib.suppress(Exception):
            await deps.images.delete(image.id, identity)
        raise
    deps.tasks.spawn(
        flows.finish_upload(deps, call.ctx, volume_id, image.id, identity, fields["disk_format"])
    )
    return JSONResponse({"os-volume_upload_image": out}, status_code=202)
