"""``/v2.1/flavors``: admin create/delete, everyone list/show/detail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import flavors
from ..domain.common import envelope
from .common import links, page, transaction

router = APIRouter(prefix="/v2.1/flavors", tags=["flavors"])


def _full(request: Request, flavor: Any) -> dict[str, Any]:
    return flavors.view(flavor) | {"links": links(request, "flavors", flavor.id)}


async def _listing(request: Request, detail: bool) -> dict[str, Any]:
    async with transaction(request) as call:
        rows = await flavors.list_all(call.session, call.ctx, dict(request.query_params))
    items = [_full(request, r) for r in rows]
    if not detail:
        items = [{k: i[k] for k in ("id", "name", "links")} for i in items]
    return page(request, "flavors", items)


@router.get("")
async def list_flavors(request: Request) -> dict[str, Any]:
    return await _listing(request, detail=False)


@router.get("/detail")
async def list_flavors_detail(request: Request) -> dict[str, Any]:
    return await _listing(request, detail=True)


@router.post("")
async def create_flavor(request: Request, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        flavor = await flavors.create(call.session, call.ctx, envelope(body, "flavor"))
        return {"flavor": _full(request, flavor)}


@router.get("/{flavor_id}")
async def show_flavor(request: Request, flavor_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        return {"flavor": _full(request, await flavors.get(call.session, call.ctx, flavor_id))}


@router.get("/{flavor_id}/os-extra_specs")
async def extra_specs(request: Request, flavor_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        await flavors.get(call.session, call.ctx, flavor_id)
    return {"extra_specs": {}}


@router.delete("/{flavor_id}", status_code=202, response_class=Response)
async def delete_flavor(request: Request, flavor_id: str) -> Response:
    async with transaction(request) as call:
        await flavors.remove(call.session, call.ctx, flavor_id)
    return Response(status_code=202)
