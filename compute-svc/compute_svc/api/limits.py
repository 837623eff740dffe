"""``/v2.1/limits`` and ``/v2.1/os-availability-zone``: what clients read before a boot.

The quotas in force for the caller's project (an admin may ask for another's with
``?tenant_id=``, as in Nova) and what it uses of them (``domain.quotas``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..domain import quotas
from ..domain.servers import METADATA_LIMIT
from .common import transaction

router = APIRouter(prefix="/v2.1", tags=["limits"])
ZONE = "nova"


@router.get("/limits")
async def limits(request: Request) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        project = call.ctx.project_id or ""
        if call.ctx.is_admin and request.query_params.get("tenant_id"):
            project = request.query_params["tenant_id"]
        hard = await quotas.QUOTAS.limits(call.session, project, quotas.defaults(call.settings))
        used = await quotas.QUOTAS.usage(call.session, project)
    absolute = {
        "maxTotalInstances": hard["instances"],
        "maxTotalCores": hard["cores"],
        "maxTotalRAMSize": hard["ram"],
        "maxServerMeta": METADATA_LIMIT,
        "maxImageMeta": METADATA_LIMIT,
        "maxPersonality": 0,
        "maxPersonalitySize": 0,
        "maxTotalKeypairs": hard["key_pairs"],
        "maxServerGroups": 0,
        "maxServerGroupMembers": 0,
        "maxTotalFloatingIps": -1,
        "maxSecurityGroups": -1,
        "maxSecurityGroupRules": -1,
        "totalInstancesUsed": used["instances"],
        "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"],
        "totalFloatingIpsUsed": 0,
        "totalSecurityGroupsUsed": 0,
        "totalServerGroupsUsed": 0,
    }
    return {"limits": {"rate": [], "absolute": absolute}}


@router.get("/os-availability-zone")
async def availability_zones(request: Request) -> dict[str, Any]:
    zone = {"zoneName": ZONE, "zoneState": {"available": True}, "hosts": None}
    return {"availabilityZoneInfo": [zone]}
