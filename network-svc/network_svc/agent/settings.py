"""Settings of network-agent, from ``NETWORK_*`` variables like the API's.

The reconcile and heartbeat intervals and the API's topic are every agent's
(``common_rpc.chassis.agent.AgentSettings``: ``NETWORK_AGENT_RECONCILE_INTERVAL``,
``NETWORK_AGENT_HEARTBEAT_INTERVAL``, ``NETWORK_AGENT_API_TOPIC``,
``NETWORK_AGENT_API_TIMEOUT``); what is here is this agent's own.

>>> AgentSettings(agent_driver="fake").agent_driver
'fake'
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis import agent
from network_svc.settings import NetworkSettings


class AgentSettings(NetworkSettings, agent.AgentSettings):
    # Both bases carry a config: the network prefix is the one this process reads.
    model_config = SettingsConfigDict(env_prefix="NETWORK_", extra="ignore")

    # "linux" drives the kernel; "fake" only records state (RPC plumbing tests).
    agent_driver: str = "linux"
    # Prefix of every host object name; "" in production, random in tests.
    agent_name_prefix: str = ""
    # dnsmasq files; default: <data_dir>/network-agent
    agent_state_dir: Path | None = None
    # VXLAN source address and the interface of flat/VLAN networks.
    agent_local_ip: str | None = None
    agent_physical_interface: str | None = None

    def state_dir(self) -> Path:
        return self.agent_state_dir or self.data_dir / "network-agent"
