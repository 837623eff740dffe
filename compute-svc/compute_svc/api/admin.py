"""Operators' view of the hosts: ``os-hypervisors`` and ``os-services`` from the heartbeats.

A compute service is ``down`` once its agent missed heartbeats for ``agent_down_after_s``
(the scheduler skips it, its servers may be evacuated) and ``disabled`` when an operator
said so (``PUT /os-services/disable`` before 2.53, ``PUT /os-services/{id}`` from it:
``openstack compute service set --disable <host> nova-compute``); the scheduler skips it
too, its servers stay.

As Nova's below microversion 2.88, ``vcpus``, ``memory_mb`` and ``local_gb`` are what the
host has (not multiplied by the allocation ratios) and the ``*_used`` values what the
claims hold, so on an overcommitted host ``vcpus_used`` exceeds ``vcpus``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from common_rpc.agents import AgentView
from common_rpc.context import current_context
from common_rpc.errors import NotFound

from ..domain import scheduler
from ..domain.common import iso
from ..domain.errors import bad_field, forbidden, invalid
from ..domain.hypervisors import (
    compute_agents,
    disabled_reasons,
    find_service,
    hosts,
    set_enabled,
)
from .microversion import version_of

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


def _service(
    agent: AgentView, zone: str, reason: str | None, version: tuple[int, int]
) -> dict[str, Any]:
    out = {
        "id": agent.id,
        "binary": "nova-compute",
        "host": agent.host,
        "zone": zone,
        "status": "enabled" if agent.admin_state_up else "disabled",
        "state": "up" if agent.alive else "down",
        "updated_at": iso(agent.last_heartbeat),
        "disabled_reason": None if agent.admin_state_up else reason,
    }
    if version >= (2, 11):
        out["forced_down"] = False
    return out


@router.get("/os-services")
async def services(request: Request) -> dict[str, Any]:
    params = request.query_params
    deps = request.app.state.deps
    agents = await _agents(request)
    reasons = await disabled_reasons(deps)
    default = deps.settings.default_availability_zone
    version = version_of(request)
    rows = [
        _service(a, scheduler.zone_of(a, default), reasons.get(a.host), version) for a in agents
    ]
    if params.get("host"):
        rows = [r for r in rows if r["host"] == params["host"]]
    if params.get("binary"):
        rows = [r for r in rows if r["binary"] == params["binary"]]
    return {"services": rows}


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad_field(key, value, f"{value!r} is not of type 'string'")
    return value


@router.put("/os-services/{action}", response_model=None)
async def update_service(request: Request, action: str, body: Any = Body(None)) -> Any:
    """Before 2.53: ``enable``, ``disable`` or ``disable-log-reason`` with ``host`` and
    ``binary``. From 2.53: ``{id}`` with ``status`` (and ``disabled_reason``)."""
    _admin()
    deps = request.app.state.deps
    version = version_of(request)
    if not isinstance(body, dict):
        raise invalid("Invalid input: expected an object.")
    if version >= (2, 53):
        return await _update_by_id(request, action, body, version)
    if action not in ("enable", "disable", "disable-log-reason"):
        raise NotFound("Unknown action")
    host, binary = _text(body, "host"), _text(body, "binary")
    reason = _text(body, "disabled_reason") if action == "disable-log-reason" else None
    agent = await find_service(deps, host, binary)
    await set_enabled(deps, agent, action == "enable", reason)
    out = {
        "host": host,
        "binary": binary,
        "status": "enabled" if action == "enable" else "disabled",
    }
    if reason is not None:
        out["disabled_reason"] = reason
    return {"service": out}


async def _update_by_id(
    request: Request, service_id: str, body: dict[str, Any], version: tuple[int, int]
) -> dict[str, Any]:
    deps = request.app.state.deps
    unknown = set(body) - {"status", "disabled_reason", "forced_down"}
    if unknown:
        raise bad_field(
            "service", body, f"Additional properties are not allowed ({sorted(unknown)})"
        )
    status = body.get("status")
    if status is not None and status not in ("enabled", "disabled"):
        raise bad_field("status", status, f"{status!r} is not one of ['enabled', 'disabled']")
    reason = body.get("disabled_reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 255):
        raise bad_field("disabled_reason", reason, f"{reason!r} is not of type 'string'")
    if reason is not None and status != "disabled":
        raise invalid("Specifying 'disabled_reason' with status 'enabled' is invalid.")
    if body.get("forced_down"):
        raise invalid("Forcing a service down is not supported: a host is down when silent.")
    if status is None and "forced_down" not in body:
        raise invalid("'status' and/or 'forced_down' must be specified.")
    agent = next((a for a in await compute_agents(deps) if a.id == service_id), None)
    if agent is None:
        raise NotFound(f"Service {service_id} could not be found.")
    if status is not None:
        agent = await set_enabled(deps, agent, status == "enabled", reason)
    reasons = await disabled_reasons(deps)
    zone = scheduler.zone_of(agent, deps.settings.default_availability_zone)
    return {"service": _service(agent, zone, reasons.get(agent.host), version)}


@router.delete("/os-services/{service_id}", status_code=204)
async def delete_service(request: Request, service_id: str) -> Response:
    """A retired host's compute service (it comes back if its agent reports again);
    refused while servers live there."""
    _admin()
    deps = request.app.state.deps
    agent = next((a for a in await compute_agents(deps) if a.id == service_id), None)
    if agent is None:
        raise NotFound(f"Service {service_id} could not be found.")
    for host in await hosts(deps, [agent]):
        if host.running:
            raise invalid(
                f"Unable to delete compute service that is hosting instances: {agent.host}"
            )
    await deps.agents.delete(agent.id)
    return Response(status_code=204)
