"""``/v2.1/os-quota-sets``: a project's limits and usage (its own, or any for an admin);
admins set them. Another project's answers 404, as its resources do.

GET /v2.1/os-quota-sets/{project_id}/detail
    -> {"quota_set": {"id": "p1", "instances": {"limit": 10, "in_use": 1, "reserved": 0}, ...}}
PUT /v2.1/os-quota-sets/{project_id} {"quota_set": {"instances": 20}}
    -> {"quota_set": {...every limit}}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import quotas
from ..domain.common import envelope
from ..domain.errors import forbidden, not_found
from .common import Call, transaction

router = APIRouter(prefix="/v2.1/os-quota-sets", tags=["quotas"])


def _readable(call: Call, project_id: str) -> None:
    if project_id != call.ctx.project_id and not call.ctx.is_admin:
        raise not_found("Quota set", project_id)


def _admin(call: Call) -> None:
    if not call.ctx.is_admin:
        raise forbidden()


@router.get("/{project_id}")
async def show(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        _readable(call, project_id)
        return {"quota_set": await quotas.quota_set(call.session, call.settings, project_id)}


@router.get("/{project_id}/detail")
async def detail(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        _readable(call, project_id)
        found = await quotas.quota_set(call.session, call.settings, project_id, detail=True)
        return {"quota_set": found}


@router.get("/{project_id}/defaults")
async def defaults(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        _readable(call, project_id)
        return {"quota_set": quotas.default_set(call.settings, project_id)}


@router.put("/{project_id}")
async def update(request: Request, project_id: str, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        _admin(call)
        await quotas.update(call.session, project_id, envelope(body, "quota_set"))
        found = await quotas.quota_set(call.session, call.settings, project_id)
    found.pop("id")  # Nova's update answer has no id
    return {"quota_set": found}


@router.delete("/{project_id}", status_code=202, response_class=Response)
async def reset(request: Request, project_id: str) -> Response:
    """Back to the defaults (admin)."""
    async with transaction(request) as call:
        _admin(call)
        await quotas.QUOTAS.clear_limits(call.session, project_id)
    return Response(status_code=202)
