"""The compute-agent process: serves ``compute.<host>``, reconciles, reports heartbeats.

compute-agent                                   # settings from COMPUTE_*
agent = build(AgentSettings(agent_libvirt_uri="test:///default", agent_virt_type="test"))
await agent.start(); ...; await agent.stop()    # what the tests run in-process
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from common_rpc.agents import AgentHeartbeat
from common_rpc.chassis.agent_process import run_agent
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime
from compute_svc.drivers.libvirt.driver import LibvirtDriver

from .handlers import rpc as agent_rpc
from .handlers import topic
from .host import ComputeHost
from .reconcile import Reconciler
from .settings import AgentSettings

BINARY = "compute-agent"


@dataclass
class ComputeAgent:
    settings: AgentSettings
    runtime: ServiceRuntime
    host: ComputeHost
    reconciler: Reconciler
    heartbeat: AgentHeartbeat

    async def start(self) -> None:
        """Measure the host, take commands, then heartbeat and reconcile."""
        await self.host.refresh_capacity()
        await self.runtime.start()
        self.heartbeat.start()
        self.reconciler.start()

    async def stop(self) -> None:
        await self.reconciler.stop()
        await self.heartbeat.stop()
        await self.runtime.stop()
        await asyncio.to_thread(self.host.driver.close)


def build(settings: AgentSettings) -> ComputeAgent:
    driver = LibvirtDriver(
        uri=settings.agent_libvirt_uri,
        virt_type=settings.agent_virt_type,
        prefix=settings.agent_domain_prefix,
        instances_dir=settings.instances_dir(),
        shutdown_timeout=settings.agent_shutdown_timeout,
        detach_timeout=settings.device_detach_timeout,
        capacity=settings.capacity_override(),
        initiator=settings.initiator_iqn(),
    )
    host = ComputeHost(
        driver,
        settings.host,
        image_cache_min_age=settings.agent_image_cache_min_age,
        detach_attempts=settings.device_detach_attempts,
    )
    runtime = ServiceRuntime(settings, database=False, name=f"{BINARY}@{settings.host}")
    runtime.serve(
        topic(settings.host), host, ping_router(topic(settings.host), settings.host), agent_rpc
    )
    reconciler = Reconciler(
        runtime.rpc,
        host,
        settings.host,
        interval=settings.agent_reconcile_interval,
        timeout=settings.agent_api_timeout,
        api_topic=settings.agent_api_topic,
    )
    heartbeat = AgentHeartbeat(
        runtime.rpc,
        service=settings.agent_api_topic,
        binary=BINARY,
        host=settings.host,
        topic=topic(settings.host),
        capabilities=host.capabilities,
        interval_s=settings.agent_heartbeat_interval,
    )
    return ComputeAgent(settings, runtime, host, reconciler, heartbeat)


def main() -> None:
    run_agent(BINARY, AgentSettings(), build)
