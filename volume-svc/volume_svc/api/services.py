"""``/v3/{project_id}/os-services`` (admin): the volume backends and whether they are up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..domain.errors import forbidden
from .deps import check_project, deps_of

router = APIRouter(prefix="/v3/{project_id}/os-services", tags=["services"])


@router.get("")
async def list_services(request: Request, project_id: str) -> dict[str, Any]:
    ctx = check_project(request, project_id)
    if not ctx.is_admin:
        raise forbidden("Policy doesn't allow volume_extension:services:index to be performed.")
    deps = deps_of(request)
    agents = await deps.agents.list(binary="volume-agent")
    settings = deps.settings
    rows = [
        {
            "binary": "cinder-volume",
            "host": f"{a.host}@file",
            "zone": settings.availability_zone,
            "status": "enabled" if a.admin_state_up else "disabled",
            "state": "up" if a.alive else "down",
            "updated_at": a.last_heartbeat.strftime("%Y-%m-%dT%H:%M:%S.000000"),
            "disabled_reason": None,
        }
        for a in agents
    ]
    wanted_host = request.query_params.get("host")
    wanted_binary = request.query_params.get("binary")
    rows = [
        r
        for r in rows
        if (not wanted_host or r["host"].startswith(wanted_host))
        and (not wanted_binary or r["binary"] == wanted_binary)
    ]
    return {"services": rows}
