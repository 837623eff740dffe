"""Settings of network-agent, from ``NETWORK_*`` variables like the API's.

The reconcile and heartbeat intervals and the API's topic are every agent's
(``common_rpc.chassis.agent.AgentSettings``: ``NETWORK_AGENT_RECONCILE_INTERVAL``,
``NETWORK_AGENT_HEARTBEAT_INTERVAL``, ``NETWORK_AGENT_API_TOPIC``,
``NETWORK_AGENT_API_TIMEOUT``); what is here is this agent's own. Its drivers are named
per kind in ``NETWORK_DRIVERS`` (``'{"l2": "linux", "firewall": "fake"}'``); a kind it
does not name takes ``NETWORK_AGENT_DRIVER``, as every kind always did.

>>> AgentSettings(agent_driver="fake").driver("l2")
'fake'
>>> AgentSettings(agent_driver="fake", drivers={"dhcp": "linux"}).driver("dhcp")
'linux'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis import agent
from network_svc.settings import NetworkSettings

from ..drivers import KINDS
from ..drivers.base import DriverConfig
from ..drivers.names import Names


class AgentSettings(NetworkSettings, agent.AgentSettings):
    # Both bases carry a config: the network prefix is the one this process reads.
    model_config = SettingsConfigDict(env_prefix="NETWORK_", extra="ignore")

    # The driver of every kind NETWORK_DRIVERS does not name: "linux" drives the kernel,
    # "fake" only records state (RPC plumbing tests), or an installed plugin's name.
    agent_driver: str = "linux"
    # Prefix of every host object name; "" in production, random in tests.
    agent_name_prefix: str = ""
    # dnsmasq files; default: <data_dir>/network-agent
    agent_state_dir: Path | None = None
    # VXLAN source address and the interface of flat/VLAN networks.
    agent_local_ip: str | None = None
    agent_physical_interface: str | None = None

    @model_validator(mode="after")
    def _known_driver_kinds(self) -> AgentSettings:
        unknown = sorted(set(self.drivers) - set(KINDS))
        if unknown:
            raise ValueError(f"drivers: unknown kind {unknown} (network has {', '.join(KINDS)})")
        return self

    def state_dir(self) -> Path:
        return self.agent_state_dir or self.data_dir / "network-agent"

    def driver(self, kind: str) -> str:
        """The name of the ``kind`` driver this host loads (an entry point's)."""
        return self.drivers.get(kind) or self.agent_driver

    def driver_config(self) -> DriverConfig:
        return DriverConfig(
            names=Names(self.agent_name_prefix),
            state_dir=self.state_dir(),
            local_ip=self.agent_local_ip,
            physical_interface=self.agent_physical_interface,
        )
