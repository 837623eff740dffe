"""The network-agent process: the chassis' agent shell around this host's ``HostAgent``.

It serves ``network.<host>`` (``agent.handlers``), reconciles the host with the API's
``host_state`` at start and every ``agent_reconcile_interval``, and heartbeats to the API.

network-agent                                   # settings from NETWORK_*
agent = build(AgentSettings(agent_driver="fake", host="cn1"))
await agent.start(); ...; await agent.stop()    # what the tests run in-process
await agent.reconciler.run_once()               # {"networks": 1, "ports": 2, "removed": 0}
"""

from __future__ import annotations

import logging
from typing import Any

import aio_pika

from common_rpc.broker import close_channel
from common_rpc.chassis.agent import AgentShell, agent_topic
from common_rpc.chassis.agent_process import run_agent
from common_rpc.rpc import queue_name
from network_svc.drivers import KINDS, load

from ..contracts import HOST_STATE
from .handlers import rpc as commands
from .host import HostAgent
from .settings import AgentSettings

BINARY = "network-agent"
log = logging.getLogger(__name__)

# The agent process is the chassis' shell (its host object is ``.host``).
NetworkAgent = AgentShell


def build(settings: AgentSettings) -> AgentShell:
    """The shell around the drivers the settings name (PluginError if one is missing)."""
    config = settings.driver_config()
    state_dir = settings.state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)  # dnsmasq reads its files after dropping root
    drivers = load({kind: settings.driver(kind) for kind in KINDS}, config)
    host = HostAgent(drivers, config.names)

    def capabilities() -> dict[str, Any]:
        # Free-form by design: Neutron's ``configurations`` of an agent, shown to admins.
        return {
            "driver": settings.agent_driver,
            "drivers": {kind: settings.driver(kind) for kind in KINDS},
            "tunnel_types": ["vxlan"],
            "tunneling_ip": settings.agent_local_ip,
            "interface_mappings": {settings.physical_network: settings.agent_physical_interface},
            "networks": len(host.networks),
            "devices": sum(key.startswith("port:") for key in host.generations),
            # FDB and ARP entries this agent changed since it started (l2-population)
            "forwarding_updates": getattr(drivers.l2, "forwarding_changes", None),
        }

    async def drop_queued_commands() -> None:
        await _purge_commands(shell)

    shell = AgentShell.build(
        settings,
        binary=BINARY,
        host_object=host,
        commands=commands,
        host_state=HOST_STATE,
        converge=host.converge,
        capabilities=capabilities,
        before_start=drop_queued_commands,
    )
    return shell


async def _purge_commands(shell: AgentShell) -> int:
    """Drop the commands queued for this host while its agent was down (a host that died
    and came back). Its first reconcile reads the host's whole state afresh; a command
    queued before that, applied after it, would bring back what was deleted meanwhile (a
    new process keeps no tombstones: a network's stale sync would make its bridge and
    DHCP server again). How many were dropped."""
    topic = agent_topic(shell.settings.service_name, shell.settings.host)
    broker = shell.runtime.broker
    channel = await broker.channel(broker.config.url_for_topic(topic))
    try:
        queue = await channel.declare_queue(queue_name(topic), passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return 0  # the host's first start: nothing queued
    else:
        dropped = (await queue.purge()).message_count or 0
        if dropped:
            log.info("dropped %d command(s) queued while the agent was down", dropped)
        return int(dropped)
    finally:
        await close_channel(channel)


def main() -> None:
    run_agent(BINARY, AgentSettings(), build)
