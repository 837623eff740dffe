"""Operators' view of the hosts: ``os-hypervisors`` and ``os-services`` from the heartbeats.

As Nova's below microversion 2.88, ``vcpus``, ``memory_mb`` and ``local_gb`` are what the
host has (not multiplied by the allocation ratios) and the ``*_used`` values what the
claims hold, so on an overcommitted host ``vcpus_used`` exceeds ``vcpus``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.agents import AgentView
from common_rpc.context import current_context
from common_rpc.errors import NotFound

from ..domain.common import iso
from ..domain.errors import forbidden
from ..domain.hypervisors import compute_agents, hosts

router = APIRouter(prefix="/v2.1", tags=["admin"])


def _admin() -> None:
    if not current_context().is_admin:
        raise forbidden()


async def _agents(request: Request) -> list[AgentView]:
    _admin()
    return await compute_agents(request.app.state.deps)


def _summary(agent: AgentView) -> dict[str, Any]:
    return {
        "id": agent.id,
        "hypervisor_hostname": agent.host,
        "state": "up" if agent.alive else "down",
        "status": "enabled" if agent.admin_state_up else "disabled",
    }


async def _details(request: Request, agents: list[AgentView]) -> list[dict[str, Any]]:
    out = []
    for host in await hosts(request.app.state.deps, agents):
        agent, cap, used = host.agent, host.capacity, host.used
        out.append(
            _summary(agent)
            | {
                "hypervisor_type": "QEMU",
                "hypervisor_version": 1,
                "host_ip": agent.capabilities.get("host_ip", "127.0.0.1"),
                "vcpus": cap.vcpus,
                "vcpus_used": used.vcpus,
                "memory_mb": cap.ram_mb,
                "memory_mb_used": used.ram_mb,
                "local_gb": cap.disk_gb,
                "local_gb_used": used.disk_gb,
                "free_ram_mb": cap.ram_mb - used.ram_mb,
                "free_disk_gb": cap.disk_gb - used.disk_gb,
                "disk_available_least": cap.disk_gb - used.disk_gb,
                "current_workload": 0,
                "running_vms": host.running,
                "cpu_info": "{}",
                "service": {"host": agent.host, "id": agent.id, "disabled_reason": None},
            }
        )
    return out


@router.get("/os-hypervisors")
async def hypervisors(request: Request) -> dict[str, Any]:
    return {"hypervisors": [_summary(a) for a in await _agents(request)]}


@router.get("/os-hypervisors/detail")
async def hypervisors_detail(request: Request) -> dict[str, Any]:
    return {"hypervisors": await _details(request, await _agents(request))}


@router.get("/os-hypervisors/statistics")
async def hypervisor_statistics(request: Request) -> dict[str, Any]:
    rows = await _details(request, await _agents(request))
    keys = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used",
            "free_ram_mb", "free_disk_gb", "running_vms", "current_workload",
            "disk_available_least")  # fmt: skip
    stats = {k: sum(int(r[k]) for r in rows) for k in keys}
    return {"hypervisor_statistics": {"count": len(rows), **stats}}


@router.get("/os-hypervisors/{hypervisor_id}")
async def hypervisor(request: Request, hypervisor_id: str) -> dict[str, Any]:
    for row in await _details(request, await _agents(request)):
        if row["id"] == hypervisor_id:
            return {"hypervisor": row}
    raise NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")


@router.get("/os-services")
async def services(request: Request) -> dict[str, Any]:
    params = request.query_params
    rows = [
        {
            "id": agent.id,
            "binary": "nova-compute",
            "host": agent.host,
            "zone": "nova",
            "status": "enabled" if agent.admin_state_up else "disabled",
            "state": "up" if agent.alive else "down",
            "updated_at": iso(agent.last_heartbeat),
            "disabled_reason": None,
        }
        for agent in await _agents(request)
    ]
    if params.get("host"):
        rows = [r for r in rows if r["host"] == params["host"]]
    if params.get("binary"):
        rows = [r for r in rows if r["binary"] == params["binary"]]
    return {"services": rows}
