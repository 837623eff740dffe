"""The volume-agent process: serves ``volume.<host>``, reconciles exports, reports alive.

volume-agent                                      # settings from VOLUME_*
agent = build(AgentSettings(host="st1", agent_target_helper="tgt", ...))
await agent.start(); ...; await agent.stop()      # what the tests run in-process
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from common_rpc.agents import AgentHeartbeat
from common_rpc.chassis.agent import agent_topic as topic_of
from common_rpc.chassis.agent_process import run_agent
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime
from volume_svc.drivers import load_target
from volume_svc.drivers.filebackend import FileBackend

from .handlers import rpc as agent_rpc
from .host import VolumeHost
from .reconcile import Reconciler
from .settings import AgentSettings


@dataclass
class VolumeAgent:
    settings: AgentSettings
    runtime: ServiceRuntime
    host: VolumeHost
    reconciler: Reconciler
    heartbeat: AgentHeartbeat

    async def start(self) -> None:
        """Take commands, then reconcile at once (tgtd may have lost every target)."""
        await self.runtime.start()
        self.reconciler.start()
        self.heartbeat.start()

    async def stop(self) -> None:
        await self.heartbeat.stop()
        await self.reconciler.stop()
        await self.runtime.stop()


def build(settings: AgentSettings) -> VolumeAgent:
    storage = settings.storage_dir()
    backend = FileBackend(storage, prefix=settings.agent_name_prefix)
    target = load_target(
        settings.agent_target_helper,
        iqn_prefix=settings.agent_iqn_prefix,
        portal=settings.agent_portal,
        tgt_control_port=settings.agent_tgt_control_port,
    )
    host = VolumeHost(backend, target, name_prefix=settings.agent_name_prefix)
    runtime = ServiceRuntime(settings, database=False, name=f"volume-agent@{settings.host}")
    agent_topic = topic_of("volume", settings.host)
    runtime.serve(agent_topic, host, ping_router(agent_topic, settings.host), agent_rpc)
    reconciler = Reconciler(
        runtime.rpc,
        host,
        settings.host,
        interval=settings.agent_reconcile_interval,
        timeout=settings.agent_api_timeout,
        api_topic=settings.agent_api_topic,
    )

    def capabilities() -> dict[str, Any]:
        usage = shutil.disk_usage(storage)
        return {
            "backend": "file",
            "target_helper": target.name,
            "portal": settings.agent_portal,
            "total_gb": usage.total >> 30,
            "free_gb": usage.free >> 30,
        }

    heartbeat = AgentHeartbeat(
        runtime.rpc,
        # Heartbeats go to the API's topic (tests serve it under a name of their own).
        service=settings.agent_api_topic,
        binary="volume-agent",
        host=settings.host,
        topic=agent_topic,
        capabilities=capabilities,
        interval_s=settings.agent_heartbeat_interval,
    )
    return VolumeAgent(settings, runtime, host, reconciler, heartbeat)


def main() -> None:
    run_agent("volume-agent", AgentSettings(), build)
