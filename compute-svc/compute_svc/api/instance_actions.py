"""``/v2.1/servers/{id}/os-instance-actions``: what was asked of a server, and how it went.

GET .../os-instance-actions               {"instanceActions": [...]} newest first
GET .../os-instance-actions/{request_id}  {"instanceAction": {..., "events": [...]}}

Another project's server is a 404, as is a request id that made no action on it
(Nova's ``Action <id> not found``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.errors import NotFound

from ..domain import actions, servers
from .common import transaction

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])


@router.get("/{server_id}/os-instance-actions")
async def list_actions(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        rows = await actions.listed(call.session, server.id)
        return {"instanceActions": [actions.view(row) for row in rows]}


@router.get("/{server_id}/os-instance-actions/{request_id}")
async def show_action(request: Request, server_id: str, request_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        found = await actions.by_request(call.session, server.id, request_id)
        if found is None:
            raise NotFound(f"Action {request_id} not found")
        action, events = found
        admin = call.ctx.is_admin
        out = actions.view(action)
        out["events"] = [actions.event_view(event, admin=admin) for event in events]
        return {"instanceAction": out}
