"""The compute hosts as operators see them: what each has, what its claims hold, its guests.

From the agents' heartbeats (what a host has, physical, not multiplied by the allocation
ratios), the ``host_usage`` rows (what the claims hold) and the servers placed there.

    for host in await hosts(deps):     # every compute-agent that has reported
        host.agent.alive, host.capacity.vcpus, host.used.vcpus, host.running
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from common_rpc.agents import AgentView
from common_rpc.errors import NotFound

from ..db.models import ComputeService, Server
from ..wiring import Deps
from . import scheduler
from .common import transaction


@dataclass(frozen=True)
class Hypervisor:
    agent: AgentView
    capacity: scheduler.Capacity
    used: scheduler.Need
    # Servers the database places on the host, whatever their state.
    running: int


async def compute_agents(deps: Deps) -> list[AgentView]:
    """Every compute-agent that has reported, alive or not."""
    return await deps.agents.list(binary=scheduler.BINARY)


async def hosts(deps: Deps, found: list[AgentView] | None = None) -> list[Hypervisor]:
    """Each agent's host with its capacity, usage and servers (``found``: these agents)."""
    listed = await compute_agents(deps) if found is None else found
    async with transaction(deps.runtime.sessions, write=False) as session:
        usage = await scheduler.usage(session)
        placed = await session.execute(select(Server.host, func.count()).group_by(Server.host))
        running = {host: int(count) for host, count in placed.all()}
    out = []
    for agent in listed:
        cap = scheduler.capacity(agent) or scheduler.Capacity(agent.host, 0, 0, 0)
        row = usage.get(agent.host)
        used = scheduler.Need(*((row.vcpus, row.ram_mb, row.disk_gb) if row else (0, 0, 0)))
        out.append(Hypervisor(agent, cap, used, running.get(agent.host, 0)))
    return out


async def find_service(deps: Deps, host: str, binary: str) -> AgentView:
    """The compute service of ``host`` (``binary`` is Nova's name, ``nova-compute``)."""
    if binary != "nova-compute":
        raise NotFound(f"Service {binary} on host {host} could not be found.")
    for agent in await compute_agents(deps):
        if agent.host == host:
            return agent
    raise NotFound(f"Compute host {host} could not be found.")


async def set_enabled(
    deps: Deps, agent: AgentView, enabled: bool, reason: str | None = None
) -> AgentView:
    """An operator takes a host out of scheduling (or back): its agent's admin state,
    and why, kept beside; its servers stay where they are."""
    changed = await deps.agents.set_admin_state(agent.id, enabled)
    async with transaction(deps.runtime.sessions) as session:
        note = await session.get(ComputeService, agent.host)
        if note is None:
            note = ComputeService(host=agent.host)
            session.add(note)
        note.disabled_reason = None if enabled else reason
    return changed


async def disabled_reasons(deps: Deps) -> dict[str, str | None]:
    async with transaction(deps.runtime.sessions, write=False) as session:
        return {n.host: n.disabled_reason for n in await session.scalars(select(ComputeService))}
