"""``/v3/{project_id}/backups``: copies of volumes in their host's backup store.

Create answers Cinder's summary (id, name, links) with 202 and the copy runs after it;
show and ``/detail`` answer the detailed view. ``restore`` writes a backup to a new
volume or over an existing available one; ``os-reset_status`` is for admins.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import backups, checks, flows
from ..domain.errors import forbidden
from .deps import action_of, all_tenants, envelope, known_action, transaction
from .listing import render_list

router = APIRouter(prefix="/v3/{project_id}/backups", tags=["backups"])


async def _list(request: Request, project_id: str, detail: bool) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        rows = await backups.list_all(call.session, call.ctx, all_tenants(request, call.ctx))
        items = [backups.view(b, call.ctx, call.base) for b in rows]
        shown = items if detail else [backups.summary(b, call.base) for b in rows]
    return render_list(request, "backups", items, shown, kind="Backup")


@router.get("")
async def list_backups(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=False)


@router.get("/detail")
async def list_backups_detail(request: Request, project_id: str) -> dict[str, Any]:
    return await _list(request, project_id, detail=True)


@router.post("", status_code=202)
async def create_backup(request: Request, project_id: str, body: Any = Body(None)) -> Any:
    async with transaction(request, project_id) as call:
        backup = await backups.create(
            call.session, call.ctx, call.settings, envelope(body, "backup")
        )
        out = backups.summary(backup, call.base)
    call.deps.tasks.spawn(flows.finish_backup(call.deps, call.ctx, backup.id))
    return {"backup": out}


@router.get("/{backup_id}")
async def show_backup(request: Request, project_id: str, backup_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        backup = await backups.get(call.session, call.ctx, backup_id)
        return {"backup": backups.view(backup, call.ctx, call.base)}


@router.put("/{backup_id}")
async def update_backup(
    request: Request, project_id: str, backup_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    """Cinder 3.9: name, description and (3.43) metadata."""
    async with transaction(request, project_id) as call:
        backup = await backups.update(call.session, call.ctx, backup_id, envelope(body, "backup"))
        return {"backup": backups.summary(backup, call.base)}


@router.delete("/{backup_id}", status_code=202, response_class=Response)
async def delete_backup(request: Request, project_id: str, backup_id: str) -> Response:
    async with transaction(request, project_id) as call:
        await backups.begin_delete(call.session, call.ctx, call.settings, backup_id)
    call.deps.tasks.spawn(flows.finish_backup_delete(call.deps, call.ctx, backup_id))
    return Response(status_code=202)


@router.post("/{backup_id}/restore", status_code=202)
async def restore_backup(
    request: Request, project_id: str, backup_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    checks.root(body, "restore")
    args = body["restore"] or {}  # Cinder's schema allows null: a new volume
    if not isinstance(args, dict):
        raise checks.field_error("restore", args, f"{args!r} is not of type 'object', 'null'")
    async with transaction(request, project_id) as call:
        backup, vol, new = await backups.begin_restore(
            call.session, call.ctx, call.settings, backup_id, args
        )
        out = backups.restore_view(backup, vol)
    call.deps.tasks.spawn(flows.finish_restore(call.deps, call.ctx, backup_id, vol.id, new))
    return {"restore": out}


@router.post("/{backup_id}/action", status_code=202, response_class=Response)
async def backup_action(
    request: Request, project_id: str, backup_id: str, body: Any = Body(None)
) -> Response:
    action, args = action_of(body)
    async with transaction(request, project_id) as call:
        await backups.get(call.session, call.ctx, backup_id)  # a missing one: 404
        known_action(action, ("os-reset_status", "os-force_delete"))
        if not call.ctx.is_admin:
            raise forbidden(
                f"Policy doesn't allow backup:backup-{action.removeprefix('os-')} to be performed."
            )
        if action == "os-force_delete":
            await backups.begin_delete(call.session, call.ctx, call.settings, backup_id)
        else:
            if not isinstance(args, dict):
                raise checks.field_error(action, args, f"{args!r} is not of type 'object'")
            await backups.reset_status(call.session, call.ctx, backup_id, args)
    if action == "os-force_delete":
        call.deps.tasks.spawn(flows.finish_backup_delete(call.deps, call.ctx, backup_id))
    return Response(status_code=202)
