"""``/v3/{project_id}/types``: the default type for everyone; admins add and remove types."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import types
from .deps import envelope, transaction

router = APIRouter(prefix="/v3/{project_id}/types", tags=["types"])


@router.get("")
async def list_types(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        await types.ensure_default(call.session, call.settings)
        rows = await types.list_all(call.session, call.ctx)
        return {"volume_types": [types.view(t, call.ctx) for t in rows]}


@router.get("/default")
async def default_type(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vt = await types.ensure_default(call.session, call.settings)
        return {"volume_type": types.view(vt, call.ctx)}


@router.post("")
async def create_type(request: Request, project_id: str, body: Any = Body(None)) -> Any:
    async with transaction(request, project_id) as call:
        vt = await types.create(call.session, call.ctx, envelope(body, "volume_type"))
        return {"volume_type": types.view(vt, call.ctx)}


@router.get("/{type_id}")
async def show_type(request: Request, project_id: str, type_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        await types.ensure_default(call.session, call.settings)
        vt = await types.get(call.session, call.ctx, type_id)
        return {"volume_type": types.view(vt, call.ctx)}


@router.delete("/{type_id}", status_code=202)
async def delete_type(request: Request, project_id: str, type_id: str) -> Response:
    async with transaction(request, project_id) as call:
        await types.remove(call.session, call.ctx, call.settings, type_id)
    return Response(status_code=202)
