"""Settings of volume-agent, from ``VOLUME_*`` variables like the API's.

The reconcile and heartbeat intervals and the API's topic are every agent's
(``common_rpc.chassis.agent.AgentSettings``); what is here is this agent's own.

>>> AgentSettings(agent_target_helper="tgt").agent_target_helper
'tgt'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis import agent
from common_rpc.chassis.addresses import canonical_host_port
from volume_svc.settings import VolumeSettings


class AgentSettings(VolumeSettings, agent.AgentSettings):
    # Both bases carry a config: the volume prefix is the one this process reads.
    model_config = SettingsConfigDict(env_prefix="VOLUME_", extra="ignore")

    # Where the volume files live; default: <data_dir>/volumes
    agent_storage_dir: Path | None = None
    # "auto" (LIO where configfs has a target directory, else tgt), "tgt", "lio", "fake".
    agent_target_helper: str = "auto"
    # Base of every target's IQN; tests use one of their own.
    agent_iqn_prefix: str = "iqn.2010-10.org.stackling"
    # Prefix of file and CHAP account names; "" in production, random in tests.
    agent_name_prefix: str = ""
    # The portal compute hosts reach this host's targets at (tgtd listens on 3260).
    agent_portal: str = "127.0.0.1:3260"
    # tgtd's management port (tgtadm -C); 0 is the default daemon.
    agent_tgt_control_port: int = 0

    @field_validator("agent_portal")
    @classmethod
    def _canonical_portal(cls, value: str) -> str:
        # Echoed to compute in every connection's target_portal: RFC 5952 for IPv6.
        return canonical_host_port(value)

    def storage_dir(self) -> Path:
        return self.agent_storage_dir or self.data_dir / "volumes"
