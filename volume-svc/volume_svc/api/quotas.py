"""``/v3/{project_id}/os-quota-sets``: a project's limits and usage; admins change them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import quotas
from ..domain.errors import forbidden, not_found
from .deps import envelope, transaction

router = APIRouter(prefix="/v3/{project_id}/os-quota-sets", tags=["quotas"])


@router.get("/{target}/defaults")
async def defaults(request: Request, project_id: str, target: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        return {"quota_set": {"id": target, **quotas.defaults(call.settings)}}


@router.get("/{target}")
async def show(request: Request, project_id: str, target: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        if target != call.ctx.project_id and not call.ctx.is_admin:
            # Another project's quotas are its own business: as absent as its volumes.
            raise not_found("Quota set", target)
        hard = await quotas.limits(call.session, call.settings, target)
        if request.query_params.get("usage", "").lower() not in ("true", "1"):
            return {"quota_set": {"id": target, **hard}}
        used = await quotas.usage(call.session, target)
        detail = {
            r: {"limit": hard[r], "in_use": used[r], "reserved": 0, "allocated": 0}
            for r in quotas.RESOURCES
        }
        return {"quota_set": {"id": target, **detail}}


@router.put("/{target}")
async def update(
    request: Request, project_id: str, target: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        if not call.ctx.is_admin:
            raise forbidden()
        await quotas.set_limits(call.session, target, envelope(body, "quota_set"))
        return {"quota_set": await quotas.limits(call.session, call.settings, target)}


@router.delete("/{target}", response_class=Response)
async def reset(request: Request, project_id: str, target: str) -> Response:
    """Back to the defaults (admin)."""
    async with transaction(request, project_id) as call:
        if not call.ctx.is_admin:
            raise forbidden()
        await quotas.clear_limits(call.session, target)
    return Response(status_code=200)
