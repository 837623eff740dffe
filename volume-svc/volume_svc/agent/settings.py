"""Settings of volume-agent, from ``VOLUME_*`` variables like the API's.

The reconcile and heartbeat intervals and the API's topic are every agent's
(``common_rpc.chassis.agent.AgentSettings``); what is here is this agent's own. Its
drivers are named in ``VOLUME_DRIVERS`` (``'{"backend": "file", "target": "lio"}'``); the
target may also be named by ``VOLUME_AGENT_TARGET_HELPER``, as it always could.

>>> AgentSettings(agent_target_helper="tgt").driver("target")
'tgt'
>>> AgentSettings(drivers={"target": "fake"}, agent_target_helper="tgt").driver("target")
'fake'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis import agent
from common_rpc.chassis.addresses import canonical_host_port
from volume_svc.settings import VolumeSettings

from ..drivers import KINDS
from ..drivers.base import DriverConfig


class AgentSettings(VolumeSettings, agent.AgentSettings):
    # Both bases carry a config: the volume prefix is the one this process reads.
    model_config = SettingsConfigDict(env_prefix="VOLUME_", extra="ignore")

    # Where the volume files live; default: <data_dir>/volumes
    agent_storage_dir: Path | None = None
    # Where the backup driver ``file`` keeps backups; default: <data_dir>/backups
    agent_backup_dir: Path | None = None
    # The target driver when VOLUME_DRIVERS names none: "auto" (LIO where configfs has a
    # target directory, else tgt), "tgt", "lio", "fake" or an installed plugin's name.
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

    @model_validator(mode="after")
    def _known_driver_kinds(self) -> AgentSettings:
        unknown = sorted(set(self.drivers) - set(KINDS))
        if unknown:
            raise ValueError(f"drivers: unknown kind {unknown} (volume has {', '.join(KINDS)})")
        return self

    def storage_dir(self) -> Path:
        return self.agent_storage_dir or self.data_dir / "volumes"

    def driver(self, kind: str) -> str:
        """The name of the ``kind`` driver this host loads (an entry point's)."""
        defaults = {"backend": "file", "target": self.agent_target_helper, "backup": "file"}
        return self.drivers.get(kind) or defaults[kind]

    def driver_config(self) -> DriverConfig:
        return DriverConfig(
            storage_dir=self.storage_dir(),
            iqn_prefix=self.agent_iqn_prefix,
            portal=self.agent_portal,
            name_prefix=self.agent_name_prefix,
            tgt_control_port=self.agent_tgt_control_port,
            backup_dir=self.agent_backup_dir or self.data_dir / "backups",
        )
