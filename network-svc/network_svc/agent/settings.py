"""Settings of network-agent, from ``NETWORK_*`` variables like the API's.

>>> AgentSettings(agent_driver="fake").agent_driver
'fake'
"""

from __future__ import annotations

from pathlib import Path

from network_svc.settings import NetworkSettings


class AgentSettings(NetworkSettings):
    # "linux" drives the kernel; "fake" only records state (RPC plumbing tests).
    agent_driver: str = "linux"
    # Prefix of every host object name; "" in production, random in tests.
    agent_name_prefix: str = ""
    # dnsmasq files; default: <data_dir>/network-agent
    agent_state_dir: Path | None = None
    # VXLAN source address and the interface of flat/VLAN networks.
    agent_local_ip: str | None = None
    agent_physical_interface: str | None = None
    # Seconds between full reconciles against the API's DB.
    agent_reconcile_interval: float = 60.0
    # The network API's RPC topic (tests serve it under a name of their own).
    agent_api_topic: str = "network"
    # Deadline of each call to the network API.
    agent_api_timeout: float = 10.0

    def state_dir(self) -> Path:
        return self.agent_state_dir or self.data_dir / "network-agent"
