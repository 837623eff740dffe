"""The network-agent process: serves ``network.<host>`` and reconciles the host.

network-agent                                   # settings from NETWORK_*
agent = build(AgentSettings(agent_driver="fake", host="cn1"))
await agent.start(); ...; await agent.stop()    # what the tests run in-process
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common_rpc.agents import AgentHeartbeat
from common_rpc.chassis.agent import agent_topic
from common_rpc.chassis.agent_process import run_agent
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime
from network_svc.drivers import load
from network_svc.drivers.names import Names

from .handlers import rpc as agent_rpc
from .host import HostAgent
from .reconcile import Reconciler
from .settings import AgentSettings


@dataclass
class NetworkAgent:
    settings: AgentSettings
    runtime: ServiceRuntime
    host: HostAgent
    reconciler: Reconciler
    heartbeat: AgentHeartbeat

    async def start(self) -> None:
        """Connect and take commands, then reconcile at once and every interval."""
        await self.runtime.start()
        self.reconciler.start()
        self.heartbeat.start()

    async def stop(self) -> None:
        await self.heartbeat.stop()
        await self.reconciler.stop()
        await self.runtime.stop()


def build(settings: AgentSettings) -> NetworkAgent:
    names = Names(settings.agent_name_prefix)
    state_dir = settings.state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)  # dnsmasq reads its files after dropping root
    drivers = load(
        settings.agent_driver,
        names=names,
        state_dir=state_dir,
        local_ip=settings.agent_local_ip,
        physical_interface=settings.agent_physical_interface,
    )
    # The fake drivers touch no kernel: no device of theirs ever exists.
    fake = settings.agent_driver == "fake"
    host = HostAgent(drivers, names, device_exists=(lambda _name: False) if fake else None)
    runtime = ServiceRuntime(settings, database=False, name=f"network-agent@{settings.host}")
    topic = agent_topic("network", settings.host)
    runtime.serve(topic, host, ping_router(topic, settings.host), agent_rpc)
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
        binary="network-agent",
        host=settings.host,
        topic=topic,
        capabilities=lambda: _configurations(settings, host),
        interval_s=settings.agent_heartbeat_s,
    )
    return NetworkAgent(settings, runtime, host, reconciler, heartbeat)


def _configurations(settings: AgentSettings, host: HostAgent) -> dict[str, Any]:
    """What the admin agent listing shows of this host (Neutron's ``configurations``)."""
    return {
        "driver": settings.agent_driver,
        "tunnel_types": ["vxlan"],
        "tunneling_ip": settings.agent_local_ip,
        "interface_mappings": {settings.physical_network: settings.agent_physical_interface},
        "networks": len(host.networks),
        "devices": sum(key.startswith("port:") for key in host.generations),
    }


def main() -> None:
    run_agent("network-agent", AgentSettings(), build)
