"""``/v2.1/os-simple-tenant-usage``: every project's usage for an admin (``openstack
usage list``), one project's for its members or an admin (``openstack usage show``).

GET /v2.1/os-simple-tenant-usage?start=2024-01-01T00:00:00&end=...&detailed=1
GET /v2.1/os-simple-tenant-usage/{project_id}?start=...&end=...
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from ..domain import usage
from ..domain.errors import forbidden, not_found
from .common import transaction

router = APIRouter(prefix="/v2.1/os-simple-tenant-usage", tags=["usage"])


@router.get("")
async def index(request: Request) -> dict[str, Any]:
    params = request.query_params
    async with transaction(request, write=False) as call:
        if not call.ctx.is_admin:
            raise forbidden()
        now = datetime.now(UTC)
        begin, stop = usage.period(params.get("start"), params.get("end"), now)
        found = await usage.tenant_usages(
            call.session, begin, stop, detailed=params.get("detailed") == "1", now=now
        )
    return {"tenant_usages": found}


@router.get("/{project_id}")
async def show(request: Request, project_id: str) -> dict[str, Any]:
    """``{}`` when the project ran nothing in the period, as Nova answers."""
    params = request.query_params
    async with transaction(request, write=False) as call:
        if project_id != call.ctx.project_id and not call.ctx.is_admin:
            raise not_found("Usage of project", project_id)
        now = datetime.now(UTC)
        begin, stop = usage.period(params.get("start"), params.get("end"), now)
        found = await usage.tenant_usages(call.session, begin, stop, project_id=project_id, now=now)
    return {"tenant_usage": found[0] if found else {}}
