"""``/v3/{project_id}/snapshots``: point-in-time copies of a volume, on its host.

Create and update answer Cinder's summary view; show and ``/detail`` add
``os-extended-snapshot-attributes:progress`` and ``:project_id``. ``metadata`` and
``metadata/{key}`` are Cinder's snapshot metadata API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import flows, snapshots
from ..domain.checks import field_error
from .deps import action_of, all_tenants, envelope, known_action, transaction
from .listing import render_list

router = APIRouter(prefix="/v3/{project_id}/snapshots", tags=["snapshots"])


async def _list(request: Request, project_id: str, detail: bool) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        rows = await snapshots.list_all(call.session, call.ctx, all_tenants(request, call.ctx))
        items = [snapshots.view(s, detail=True) for s in rows]
        shown = items if detail else [snapshots.view(s) for s in rows]
    return render_list(request, "snapshots", items, shown, kind="Snapshot")


@router.get("")
async def list_snapshots(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=False)


@router.get("/detail")
async def list_snapshots_detail(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=True)


@router.post("", status_code=202)
async def create_snapshot(request: Request, project_id: str, body: Any = Body(None)) -> Any:
    async with transaction(request, project_id) as call:
        snap = await snapshots.create(
            call.session, call.ctx, call.settings, envelope(body, "snapshot")
        )
        out = snapshots.view(snap)
    call.deps.tasks.spawn(flows.finish_snapshot(call.deps, call.ctx, snap.id))
    return {"snapshot": out}


@router.get("/{snapshot_id}")
async def show_snapshot(request: Request, project_id: str, snapshot_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        snap = await snapshots.get(call.session, call.ctx, snapshot_id)
        return {"snapshot": snapshots.view(snap, detail=True)}


@router.put("/{snapshot_id}")
async def update_snapshot(
    request: Request, project_id: str, snapshot_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        snap = await snapshots.update(
            call.session, call.ctx, snapshot_id, envelope(body, "snapshot")
        )
        return {"snapshot": snapshots.view(snap)}


@router.delete("/{snapshot_id}", status_code=202, response_class=Response)
async def delete_snapshot(request: Request, project_id: str, snapshot_id: str) -> Response:
    async with transaction(request, project_id) as call:
        await snapshots.begin_delete(call.session, call.ctx, call.settings, snapshot_id)
    call.deps.tasks.spawn(flows.finish_snapshot_delete(call.deps, call.ctx, snapshot_id))
    return Response(status_code=202)


@router.post("/{snapshot_id}/action", status_code=202, response_class=Response)
async def snapshot_action(
    request: Request, project_id: str, snapshot_id: str, body: Any = Body(None)
) -> Response:
    action, args = action_of(body)
    async with transaction(request, project_id) as call:
        await snapshots.get(call.session, call.ctx, snapshot_id)  # a missing one: 404
        known_action(action, ("os-reset_status",))
        if not isinstance(args, dict):
            raise field_error(action, args, f"{args!r} is not of type 'object'")
        await snapshots.reset_status(call.session, call.ctx, snapshot_id, args)
    return Response(status_code=202)


@router.get("/{snapshot_id}/metadata")
async def show_metadata(request: Request, project_id: str, snapshot_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        snap = await snapshots.get(call.session, call.ctx, snapshot_id)
        return {"metadata": dict(snap.metadata_ or {})}


@router.post("/{snapshot_id}/metadata")
async def add_metadata(
    request: Request, project_id: str, snapshot_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    """Merge the given keys into the metadata; answer all of it."""
    async with transaction(request, project_id) as call:
        merged = await snapshots.set_metadata(
            call.session, call.ctx, snapshot_id, body, replace=False
        )
        return {"metadata": merged}


@router.put("/{snapshot_id}/metadata")
async def replace_metadata(
    request: Request, project_id: str, snapshot_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        new = await snapshots.set_metadata(call.session, call.ctx, snapshot_id, body, replace=True)
        return {"metadata": new}


@router.get("/{snapshot_id}/metadata/{key}")
async def show_metadata_item(
    request: Request, project_id: str, snapshot_id: str, key: str
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        return {"meta": await snapshots.metadata_item(call.session, call.ctx, snapshot_id, key)}


@router.put("/{snapshot_id}/metadata/{key}")
async def set_metadata_item(
    request: Request, project_id: str, snapshot_id: str, key: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        meta = await snapshots.set_metadata_item(call.session, call.ctx, snapshot_id, key, body)
        return {"meta": meta}


@router.delete("/{snapshot_id}/metadata/{key}", response_class=Response)
async def delete_metadata_item(
    request: Request, project_id: str, snapshot_id: str, key: str
) -> Response:
    async with transaction(request, project_id) as call:
        await snapshots.delete_metadata_item(call.session, call.ctx, snapshot_id, key)
    return Response(status_code=200)
