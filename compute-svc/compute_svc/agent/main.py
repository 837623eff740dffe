"""The compute-agent process: the chassis' agent shell around this host's ``ComputeHost``.

It serves ``compute.<host>`` (``agent.handlers``), reconciles the host with the API's
``host_state`` at start and every ``agent_reconcile_interval`` (orphan domains and disks
removed, NICs a domain lacks plugged back, power states that differ reported with
``power_state_changed``, the capacity measured again), and heartbeats to the API.

compute-agent                                   # settings from COMPUTE_*
agent = build(AgentSettings(agent_libvirt_uri="test:///default", agent_virt_type="test"))
await agent.start(); ...; await agent.stop()    # what the tests run in-process
await agent.reconciler.run_once()               # {"domains": 2, "removed": ["…"], ...}
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from common_rpc.chassis.agent import AgentShell
from common_rpc.chassis.agent_process import run_agent

from ..contracts import HOST_STATE, POWER_STATE_CHANGED, HostState, PowerStateChanged
from ..drivers import load_virt
from .handlers import rpc as commands
from .host import ComputeHost
from .settings import AgentSettings

BINARY = "compute-agent"

# The agent process is the chassis' shell (its host object is ``.host``).
ComputeAgent = AgentShell


def build(settings: AgentSettings) -> AgentShell:
    # The virt driver the settings name (COMPUTE_DRIVERS), an entry point's.
    driver = load_virt(settings.driver("virt"), settings.virt_config())
    host = ComputeHost(
        driver,
        settings.host,
        image_cache_min_age=settings.agent_image_cache_min_age,
        detach_attempts=settings.device_detach_attempts,
    )

    # Free-form by design: the round's findings, logged and returned by run_once only.
    async def converge(state: HostState, since: float) -> dict[str, Any]:
        """One round on the host, then what the service should know of it: each guest
        whose power state differs from the service's (one-way), the capacity measured
        again (the next heartbeat carries it). The findings are free-form, as the
        chassis' reconciler takes every service's (logged, and what ``run_once`` returns)."""
        found = await host.converge(state.servers, since)
        for server_id, power_state in found.power_changes:
            report = PowerStateChanged(server_id=server_id, power_state=power_state)
            await shell.runtime.rpc.send(settings.api_topic(), POWER_STATE_CHANGED, report)
        await host.refresh_capacity()
        return asdict(found)

    async def measure() -> None:
        # Measured before the first heartbeat, so the scheduler sees the host at once.
        await host.refresh_capacity()

    # Free-form by design: the heartbeat's capabilities, shown to admins as they are.
    def capabilities() -> dict[str, Any]:
        """The heartbeat's: the host's capacity and initiator, and its zone when set."""
        zone = settings.agent_availability_zone
        return host.capabilities() | ({"availability_zone": zone} if zone else {})

    async def close() -> None:
        await asyncio.to_thread(driver.close)

    shell = AgentShell.build(
        settings,
        binary=BINARY,
        host_object=host,
        commands=commands,
        host_state=HOST_STATE,
        converge=converge,
        capabilities=capabilities,
        before_start=measure,
        after_stop=close,
    )
    return shell


def main() -> None:
    run_agent(BINARY, AgentSettings(), build)
