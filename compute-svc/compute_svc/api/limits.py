"""``/v2.1/limits`` and ``/v2.1/os-availability-zone``: what clients read before a boot.

No quotas are enforced (-1: unlimited); usage is the caller's project's servers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from ..db.models import Server
from ..domain.servers import METADATA_LIMIT
from .common import transaction

router = APIRouter(prefix="/v2.1", tags=["limits"])
ZONE = "nova"


@router.get("/limits")
async def limits(request: Request) -> dict[str, Any]:
    async with transaction(request) as call:
        count, cores, ram = (
            await call.session.execute(
                select(func.count(), func.sum(Server.vcpus), func.sum(Server.ram_mb)).where(
                    Server.project_id == call.ctx.project_id
                )
            )
        ).one()
    absolute = {
        "maxTotalInstances": -1,
        "maxTotalCores": -1,
        "maxTotalRAMSize": -1,
        "maxServerMeta": METADATA_LIMIT,
        "maxImageMeta": METADATA_LIMIT,
        "maxPersonality": 0,
        "maxPersonalitySize": 0,
        "maxTotalKeypairs": -1,
        "maxServerGroups": 0,
        "maxServerGroupMembers": 0,
        "maxTotalFloatingIps": -1,
        "maxSecurityGroups": -1,
        "maxSecurityGroupRules": -1,
        "totalInstancesUsed": int(count or 0),
        "totalCoresUsed": int(cores or 0),
        "totalRAMUsed": int(ram or 0),
        "totalFloatingIpsUsed": 0,
        "totalSecurityGroupsUsed": 0,
        "totalServerGroupsUsed": 0,
    }
    return {"limits": {"rate": [], "absolute": absolute}}


@router.get("/os-availability-zone")
async def availability_zones(request: Request) -> dict[str, Any]:
    zone = {"zoneName": ZONE, "zoneState": {"available": True}, "hosts": None}
    return {"availabilityZoneInfo": [zone]}
