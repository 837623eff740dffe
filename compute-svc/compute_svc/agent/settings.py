"""Settings of compute-agent, from ``COMPUTE_*`` variables like the API's.

The reconcile and heartbeat intervals and the API's topic are every agent's
(``common_rpc.chassis.agent.AgentSettings``); what is here is this agent's own. Its virt
driver is named in ``COMPUTE_DRIVERS`` (``'{"virt": "libvirt"}'``, the default): an entry
point of ``stackling.compute.drivers``.

>>> AgentSettings(agent_libvirt_uri="test:///default").agent_virt_type
'qemu'
>>> AgentSettings().driver("virt")
'libvirt'
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis import agent

from ..drivers import KINDS
from ..drivers.base import HostCapacity, VirtConfig
from ..settings import ComputeSettings

DEFAULT_DRIVERS = {"virt": "libvirt"}


class AgentSettings(ComputeSettings, agent.AgentSettings):
    # Both bases carry a config: the compute prefix is the one this process reads.
    model_config = SettingsConfigDict(env_prefix="COMPUTE_", extra="ignore")

    # Where libvirt is: qemu:///system on a host, test:///default for fast tests.
    agent_libvirt_uri: str = "qemu:///system"
    # The domain type: "qemu" (TCG) here, "kvm" in production, "test" on test:///default.
    agent_virt_type: str = "qemu"
    # Every domain (and libvirt secret) whose name starts with it is this agent's.
    agent_domain_prefix: str = "stackling-"
    # Base images, per-server disks, config drives, console logs;
    # default: <data_dir>/compute-agent/instances
    agent_instances_dir: Path | None = None
    # Seconds an ACPI shutdown may take before "stop" pulls the plug (0: at once).
    agent_shutdown_timeout: float = 10.0
    # The iSCSI initiator name QEMU logs in with; volume targets admit only it, so it is
    # stable per host. Unset: iqn.2010-10.org.stackling:<host>.
    agent_initiator_iqn: str | None = None
    # A cached image no server uses is removed once unused for this many seconds.
    agent_image_cache_min_age: float = 3600.0
    # What the scheduler may place here; unset: what libvirt and the disk report.
    agent_capacity_vcpus: int | None = None
    agent_capacity_ram_mb: int | None = None
    agent_capacity_disk_gb: int | None = None
    # The availability zone this host is in, reported in its heartbeat; unset: the
    # service's default zone (COMPUTE_DEFAULT_AVAILABILITY_ZONE, "nova").
    agent_availability_zone: str | None = None

    @model_validator(mode="after")
    def _known_driver_kinds(self) -> AgentSettings:
        unknown = sorted(set(self.drivers) - set(KINDS))
        if unknown:
            raise ValueError(f"drivers: unknown kind {unknown} (compute has {', '.join(KINDS)})")
        return self

    def driver(self, kind: str) -> str:
        """The name of the ``kind`` driver this host loads (an entry point's)."""
        return self.drivers.get(kind) or DEFAULT_DRIVERS[kind]

    def virt_config(self) -> VirtConfig:
        return VirtConfig(
            uri=self.agent_libvirt_uri,
            virt_type=self.agent_virt_type,
            prefix=self.agent_domain_prefix,
            instances_dir=self.instances_dir(),
            shutdown_timeout=self.agent_shutdown_timeout,
            detach_timeout=self.device_detach_timeout,
            capacity=self.capacity_override(),
            initiator=self.initiator_iqn(),
        )

    def instances_dir(self) -> Path:
        path = self.agent_instances_dir or self.data_dir / "compute-agent" / "instances"
        return path.resolve()  # QEMU is handed absolute paths

    def initiator_iqn(self) -> str:
        """This host's initiator: the setting, or one derived from the host name."""
        if self.agent_initiator_iqn:
            return self.agent_initiator_iqn
        return default_initiator(self.host)

    def capacity_override(self) -> HostCapacity | None:
        values = (
            self.agent_capacity_vcpus,
            self.agent_capacity_ram_mb,
            self.agent_capacity_disk_gb,
        )
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise ValueError("set all of COMPUTE_AGENT_CAPACITY_{VCPUS,RAM_MB,DISK_GB} or none")
        vcpus, ram_mb, disk_gb = values
        return HostCapacity(
            vcpus=int(vcpus or 0), ram_mb=int(ram_mb or 0), disk_gb=int(disk_gb or 0)
        )


def default_initiator(host: str) -> str:
    """``iqn.2010-10.org.stackling:<host>``, lower case, with what an IQN may not hold
    (anything but letters, digits, ``.``, ``-`` and ``:``) replaced by ``-``.

    >>> default_initiator("CN_1.example")
    'iqn.2010-10.org.stackling:cn-1.example'
    """
    return "iqn.2010-10.org.stackling:" + re.sub(r"[^a-z0-9.:-]", "-", host.lower())
