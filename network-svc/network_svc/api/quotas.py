"""``/v2.0/quotas``: a project's limits and usage (its own, or any for an admin); admins
set them. Another project's answers 404, as its resources do.

GET /v2.0/quotas/{project_id}/details -> {"quota": {"port": {"limit": 500, "used": 3,
                                                    "reserved": 0}, ...}}
PUT /v2.0/quotas/{project_id} {"quota": {"port": 20}} -> {"quota": {...every limit}}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import quotas
from ..domain.errors import not_found, policy_denied
from .deps import Call, envelope, transaction

router = APIRouter(prefix="/v2.0/quotas", tags=["quotas"])


def _readable(call: Call, project_id: str) -> None:
    if project_id != call.ctx.project_id and not call.ctx.is_admin:
        raise not_found("Quota", project_id)


def _admin(call: Call, action: str) -> None:
    if not call.ctx.is_admin:
        raise policy_denied(action)


@router.get("")
async def list_quotas(request: Request) -> dict[str, Any]:
    """Every project with limits of its own (admin)."""
    async with transaction(request, write=False) as call:
        _admin(call, "get_quota")
        out = []
        for project in await quotas.QUOTAS.projects_with_limits(call.session):
            hard = await quotas.QUOTAS.limits(call.session, project, quotas.defaults(call.settings))
            out.append({"project_id": project, "tenant_id": project, **hard})
    return {"quotas": out}


@router.get("/{project_id}")
async def show(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        _readable(call, project_id)
        hard = await quotas.QUOTAS.limits(call.session, project_id, quotas.defaults(call.settings))
    return {"quota": hard}


@router.get("/{project_id}/details")
async def details(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        _readable(call, project_id)
        hard = await quotas.QUOTAS.limits(call.session, project_id, quotas.defaults(call.settings))
        used = await quotas.QUOTAS.usage(call.session, project_id)
    return {
        "quota": {r: {"limit": hard[r], "used": used[r], "reserved": 0} for r in quotas.RESOURCES}
    }


@router.get("/{project_id}/default")
async def default(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        _readable(call, project_id)
        return {"quota": quotas.defaults(call.settings)}


@router.put("/{project_id}")
async def update(request: Request, project_id: str, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        _admin(call, "update_quota")
        # Neutron refuses a resource it does not know (400), unlike Cinder.
        values = envelope(body, "quota")
        await quotas.QUOTAS.set_limits(call.session, project_id, values, unknown_is_error=True)
        hard = await quotas.QUOTAS.limits(call.session, project_id, quotas.defaults(call.settings))
    return {"quota": hard}


@router.delete("/{project_id}", status_code=204)
async def reset(request: Request, project_id: str) -> Response:
    """Back to the defaults (admin)."""
    async with transaction(request) as call:
        _admin(call, "delete_quota")
        await quotas.QUOTAS.clear_limits(call.session, project_id)
    return Response(status_code=204)
