"""``/v3/{project_id}/limits``, ``/os-availability-zone``, ``/extensions``: what clients
ask before acting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.chassis.plugins import extensions_document

from ..domain import quotas
from .deps import check_project, transaction
from .extensions import BUILTIN

router = APIRouter(prefix="/v3/{project_id}", tags=["limits"])


@router.get("/limits")
async def limits(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        project = call.ctx.project_id or project_id
        hard = await quotas.limits(call.session, call.settings, project)
        used = await quotas.usage(call.session, project)
    absolute = {
        "maxTotalVolumes": hard["volumes"],
        "maxTotalSnapshots": hard["snapshots"],
        "maxTotalVolumeGigabytes": hard["gigabytes"],
        "maxTotalBackups": hard["backups"],
        "maxTotalBackupGigabytes": hard["backup_gigabytes"],
        "totalVolumesUsed": used["volumes"],
        "totalSnapshotsUsed": used["snapshots"],
        "totalGigabytesUsed": used["gigabytes"],
        "totalBackupsUsed": used["backups"],
        "totalBackupGigabytesUsed": used["backup_gigabytes"],
    }
    return {"limits": {"rate": [], "absolute": absolute}}


@router.get("/os-availability-zone")
async def availability_zones(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        zone = call.settings.availability_zone
    return {"availabilityZoneInfo": [{"zoneName": zone, "zoneState": {"available": True}}]}


@router.get("/extensions")
async def extensions(request: Request, project_id: str) -> dict[str, Any]:
    """The same list as ``/v3/extensions``, where Cinder also serves it."""
    check_project(request, project_id)
    plugins = getattr(request.app.state, "extensions", [])
    return extensions_document([*BUILTIN, *plugins])
