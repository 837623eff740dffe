"""``/v2.0/network-ip-availabilities`` (admin): addresses per network and subnet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..domain import ip_availability
from .deps import transaction
from .listing import render_list, select_fields

router = APIRouter(prefix="/v2.0/network-ip-availabilities", tags=["network-ip-availabilities"])


@router.get("")
async def list_availabilities(request: Request) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        items = await ip_availability.list_all(call.session, call.ctx)
    return render_list(request, "network_ip_availabilities", items, "network_id")


@router.get("/{network_id}")
async def show_availability(request: Request, network_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        item = await ip_availability.get(call.session, call.ctx, network_id)
    return {"network_ip_availability": select_fields(item, request.query_params.getlist("fields"))}
