"""``/v2.1/limits`` and ``/v2.1/os-availability-zone``: what clients read before a boot.

The quotas in force for the caller's project (an admin may ask for another's with
``?tenant_id=``, as in Nova) and what it uses of them (``domain.quotas``). The zones are
those the compute hosts' agents report (``COMPUTE_AGENT_AVAILABILITY_ZONE``, else the
service's ``default_availability_zone``): a zone is available while one of its hosts is
up and enabled; ``detail`` (admins) lists each zone's hosts and their compute service.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from common_rpc.context import current_context

from ..db.models import ServerGroup
from ..domain import quotas, scheduler
from ..domain.common import iso
from ..domain.errors import forbidden
from ..domain.hypervisors import compute_agents
from ..domain.servers import METADATA_LIMIT
from .common import transaction

router = APIRouter(prefix="/v2.1", tags=["limits"])


@router.get("/limits")
async def limits(request: Request) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        project = call.ctx.project_id or ""
        if call.ctx.is_admin and request.query_params.get("tenant_id"):
            project = request.query_params["tenant_id"]
        hard = await quotas.QUOTAS.limits(call.session, project, quotas.defaults(call.settings))
        used = await quotas.QUOTAS.usage(call.session, project)
        groups = await call.session.scalar(
            select(func.count()).select_from(ServerGroup).where(ServerGroup.project_id == project)
        )
    absolute = {
        "maxTotalInstances": hard["instances"],
        "maxTotalCores": hard["cores"],
        "maxTotalRAMSize": hard["ram"],
        "maxServerMeta": METADATA_LIMIT,
        "maxImageMeta": METADATA_LIMIT,
        "maxPersonality": 0,
        "maxPersonalitySize": 0,
        "maxTotalKeypairs": hard["key_pairs"],
        "maxServerGroups": quotas.EXTRA["server_groups"],
        "maxServerGroupMembers": quotas.EXTRA["server_group_members"],
        "maxTotalFloatingIps": -1,
        "maxSecurityGroups": -1,
        "maxSecurityGroupRules": -1,
        "totalInstancesUsed": used["instances"],
        "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"],
        "totalFloatingIpsUsed": 0,
        "totalSecurityGroupsUsed": 0,
        "totalServerGroupsUsed": int(groups or 0),
    }
    return {"limits": {"rate": [], "absolute": absolute}}


async def _zones(request: Request) -> dict[str, list[Any]]:
    """Each zone's compute agents, zones in name order."""
    deps = request.app.state.deps
    default = deps.settings.default_availability_zone
    zones: dict[str, list[Any]] = {}
    for agent in await compute_agents(deps):
        zones.setdefault(scheduler.zone_of(agent, default), []).append(agent)
    return dict(sorted(zones.items()))


@router.get("/os-availability-zone")
async def availability_zones(request: Request) -> dict[str, Any]:
    """Every zone with its state; with no compute host yet, the default zone."""
    zones = await _zones(request)
    if not zones:
        zones = {request.app.state.deps.settings.default_availability_zone: []}
    info = [
        {
            "zoneName": name,
            "zoneState": {
                "available": not agents or any(a.alive and a.admin_state_up for a in agents)
            },
            "hosts": None,
        }
        for name, agents in zones.items()
    ]
    return {"availabilityZoneInfo": info}


@router.get("/os-availability-zone/detail")
async def availability_zones_detail(request: Request) -> dict[str, Any]:
    """Admins: each zone's hosts and the state of their ``nova-compute`` service."""
    if not current_context().is_admin:
        raise forbidden()
    info = []
    for name, agents in (await _zones(request)).items():
        hosts = {
            a.host: {
                "nova-compute": {
                    "available": a.admin_state_up,
                    "active": a.alive,
                    "updated_at": iso(a.last_heartbeat),
                }
            }
            for a in agents
        }
        available = any(a.alive and a.admin_state_up for a in agents)
        info.append({"zoneName": name, "zoneState": {"available": available}, "hosts": hosts})
    return {"availabilityZoneInfo": info}
