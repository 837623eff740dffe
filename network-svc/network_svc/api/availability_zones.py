"""``/v2.0/availability_zones``: the zones networks and routers can be placed in.

Made by the network nodes (``domain.zones``); any caller lists them, as Neutron's
policy lets readers, and filters them by name, resource and state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..domain import zones
from .listing import render_list

router = APIRouter(prefix="/v2.0/availability_zones", tags=["availability_zones"])


@router.get("")
async def list_availability_zones(request: Request) -> dict[str, Any]:
    items = zones.listing(request.app.state.settings)
    return render_list(request, "availability_zones", items, "name")
