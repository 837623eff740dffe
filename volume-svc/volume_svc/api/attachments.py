"""``/v3/{project_id}/attachments``: Cinder's attachments API (3.27+, ``os-complete``
3.44), as ``openstack volume attachment create/set/complete/list/show/delete`` use it.

    POST /attachments {"attachment": {"volume_uuid": V, "instance_uuid": S}}  -> reserved
    PUT /attachments/A {"attachment": {"connector": {...}}}  -> connection_info, attaching
    POST /attachments/A/action {"os-complete": null}         -> 204, the volume in-use
    DELETE /attachments/A                                    -> {"attachments": []}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import attachments
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

router = APIRouter(prefix="/v3/{project_id}/attachments", tags=["attachments"])


async def _list(request: Request, project_id: str, detail: bool) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        rows = await attachments.list_all(call.session, call.ctx, all_tenants(request, call.ctx))
        items = [attachments.detail(a) for a in rows]
        shown = items if detail else [attachments.summary(a) for a in rows]
    # Cinder's filter for the instance is ``instance_id``; the body's key is ``instance``.
    instance = request.query_params.get("instance_id")
    if instance is not None:
        kept = [i for i, item in enumerate(items) if item["instance"] == instance]
        items, shown = [items[i] for i in kept], [shown[i] for i in kept]
    return render_list(request, "attachments", items, shown, kind="VolumeAttachment")


@router.get("")
async def list_attachments(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=False)


@router.get("/detail")
async def list_attachments_detail(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=True)


@router.post("")
async def create_attachment(
    request: Request, project_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    ctx = check_project(request, project_id)
    att = await attachments.create(deps_of(request), ctx, envelope(body, "attachment"))
    return {"attachment": attachments.detail(att)}


@router.get("/{attachment_id}")
async def show_attachment(request: Request, project_id: str, attachment_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        att = await attachments.get(call.session, call.ctx, attachment_id)
        return {"attachment": attachments.detail(att)}


@router.put("/{attachment_id}")
async def update_attachment(
    request: Request, project_id: str, attachment_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    ctx = check_project(request, project_id)
    args = envelope(body, "attachment")
    att = await attachments.update(deps_of(request), ctx, attachment_id, args)
    return {"attachment": attachments.detail(att)}


@router.post("/{attachment_id}/action", status_code=204)
async def attachment_action(
    request: Request, project_id: str, attachment_id: str, body: Any = Body(None)
) -> Response:
    """``os-complete`` only; the attachment is looked up first (a missing one is 404)."""
    action, _args = action_of(body)
    ctx = check_project(request, project_id)
    deps = deps_of(request)
    async with transaction(request, project_id) as call:
        await attachments.get(call.session, call.ctx, attachment_id)
    known_action(action, ("os-complete",))
    await attachments.complete(deps, ctx, attachment_id)
    return Response(status_code=204)


@router.delete("/{attachment_id}")
async def delete_attachment(
    request: Request, project_id: str, attachment_id: str
) -> dict[str, Any]:
    """Cinder answers the volume's attachments left: none, as volumes attach once."""
    ctx = check_project(request, project_id)
    await attachments.remove(deps_of(request), ctx, attachment_id)
    return {"attachments": []}
