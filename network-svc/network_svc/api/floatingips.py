"""``/v2.0/floatingips``; associating one changes its router, whose agent is then told."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import changes, floatingips, tags
from .deps import envelope, transaction
from .listing import render_list, select_fields
from .routers import push_routers

router = APIRouter(prefix="/v2.0/floatingips", tags=["floatingips"])


@router.get("")
async def list_floatingips(request: Request) -> dict[str, Any]:
    async with transaction(request) as call:
        rows = await floatingips.list_all(call.session, call.ctx)
        details = await floatingips.port_details(call.session, rows)
        items = [floatingips.view(f, call.ctx, details) for f in rows]
    return render_list(request, "floatingips", items)


async def _shown(session: Any, row: Any, ctx: Any) -> dict[str, Any]:
    return floatingips.view(row, ctx, await floatingips.port_details(session, [row]))


@router.post("", status_code=201)
async def create_floatingip(request: Request, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        attrs = envelope(body, "floatingip")
        given = tags.valid_tags(attrs.pop("tags")) if "tags" in attrs else None
        row = await floatingips.create(call.session, call.ctx, call.settings, attrs)
        tags.on_create(row, given)
        out = {"floatingip": await _shown(call.session, row, call.ctx)}
    await push_routers(request, changed, networks)
    return out


@router.get("/{fip_id}")
async def show_floatingip(request: Request, fip_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        row = await floatingips.get(call.session, call.ctx, fip_id)
        item = await _shown(call.session, row, call.ctx)
    return {"floatingip": select_fields(item, request.query_params.getlist("fields"))}


@router.put("/{fip_id}")
async def update_floatingip(
    request: Request, fip_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        row = await floatingips.update(call.session, call.ctx, fip_id, envelope(body, "floatingip"))
        out = {"floatingip": await _shown(call.session, row, call.ctx)}
    await push_routers(request, changed, networks)
    return out


@router.delete("/{fip_id}", status_code=204)
async def delete_floatingip(request: Request, fip_id: str) -> Response:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        await floatingips.remove(call.session, call.ctx, fip_id)
    await push_routers(request, changed, networks)
    return Response(status_code=204)
