"""``/v2.1/os-server-groups``: a project's server groups (Nova's 2.1 and 2.64 shapes).

GET    /v2.1/os-server-groups[?all_projects=True]   (admins: every project's)
POST   /v2.1/os-server-groups {"server_group": {"name": "g", "policies": ["anti-affinity"]}}
       (2.64: {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}})
GET    /v2.1/os-server-groups/{id}
DELETE /v2.1/os-server-groups/{id}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import server_groups
from ..domain.common import envelope
from .common import page, transaction
from .microversion import version_of

router = APIRouter(prefix="/v2.1/os-server-groups", tags=["server groups"])


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() not in ("0", "false", "no", "off")


@router.get("")
async def list_groups(request: Request) -> dict[str, Any]:
    version = version_of(request)
    params = request.query_params
    async with transaction(request, write=False) as call:
        rows = await server_groups.listed(call.session, call.ctx, _flag(params.get("all_projects")))
        members = await server_groups.members(call.session, [g.id for g in rows])
    items = [server_groups.view(g, members[g.id], version) for g in rows]
    offset = params.get("offset")
    if offset is not None and offset.isdigit():
        items = items[int(offset) :]
    return page(request, "server_groups", items)


@router.post("")
async def create_group(request: Request, body: Any = Body(None)) -> dict[str, Any]:
    version = version_of(request)
    spec = envelope(body, "server_group")
    async with transaction(request) as call:
        group = await server_groups.create(call.session, call.ctx, spec, version)
        return {"server_group": server_groups.view(group, [], version)}


@router.get("/{group_id}")
async def show_group(request: Request, group_id: str) -> dict[str, Any]:
    version = version_of(request)
    async with transaction(request, write=False) as call:
        group = await server_groups.get(call.session, call.ctx, group_id)
        members = await server_groups.members(call.session, [group.id])
    return {"server_group": server_groups.view(group, members[group.id], version)}


@router.delete("/{group_id}", status_code=204)
async def delete_group(request: Request, group_id: str) -> Response:
    async with transaction(request) as call:
        await server_groups.remove(call.session, call.ctx, group_id)
    return Response(status_code=204)
