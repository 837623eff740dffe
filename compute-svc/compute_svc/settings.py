"""Settings of the compute processes, from ``COMPUTE_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``COMPUTE_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> ComputeSettings(port=1234).port
    1234
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings

# libvirt waits up to 5 s for the guest within each unplug request, before our own wait.
UNPLUG_SLACK_S = 6.0


class ComputeSettings(ServiceSettings):
    service_name: ClassVar[str] = "compute"
    model_config = SettingsConfigDict(env_prefix="COMPUTE_", extra="ignore")

    port: int = 8774
    # Where image data lives (one file per image id); defaults to ``<data_dir>/images``.
    images_dir: Path | None = None
    # A resize may land on the server's own host (Nova's allow_resize_to_same_host; on
    # here, so a one-host cloud can resize): the old disk is kept there for a revert.
    allow_resize_to_same_host: bool = True
    # A server still in BUILD after this goes to ERROR (the sweeper).
    build_timeout_s: float = 600.0
    # A delete that has not converged after this is retried.
    delete_timeout_s: float = 300.0
    # Deadlines of the calls a boot makes.
    rpc_timeout_s: float = 30.0
    spawn_timeout_s: float = 300.0
    # A server snapshot (createImage, shelve): the host's copy of the disk and its upload.
    snapshot_timeout_s: float = Field(600.0, gt=0)
    # Nova's shelved_offload_time: seconds a SHELVED server keeps its host before it is
    # offloaded (0: at once, Nova's default; -1: never, until shelveOffload).
    shelved_offload_time: int = Field(0, ge=-1)
    # A hot-unplug (volume or NIC) the guest has not finished within
    # ``device_detach_timeout`` seconds is asked again on the host, up to
    # ``device_detach_attempts`` times in all (Nova's libvirt options and defaults); then
    # the detach fails and is rolled back (the device stays attached, with a fault).
    device_detach_attempts: int = Field(8, ge=1)
    device_detach_timeout: float = Field(20.0, gt=0)
    # An agent silent for longer is down: the scheduler skips its host, its compute
    # service shows "down" and its servers may be evacuated.
    agent_down_after_s: float = 30.0
    # How the scheduler orders the hosts that fit: "spread" (the most free RAM first,
    # Nova's default weigher) or "pack" (the least free RAM first: fill a host, then the
    # next, so empty hosts stay empty).
    scheduler_strategy: Literal["spread", "pack"] = "spread"
    # The zone of a compute host whose agent names none (Nova's default_availability_zone).
    default_availability_zone: str = "nova"
    # Each compute-api process records a heartbeat this often; one silent for
    # ``api_down_after_s`` is dead, and another takes over its boots and deletes.
    api_heartbeat_s: float = 3.0
    api_down_after_s: float = 12.0
    # Largest image upload accepted, in bytes.
    image_size_cap: int = 20 * 1024**3
    # A project's quotas unless an admin set its own (Nova's defaults); -1: unlimited.
    quota_instances: int = 10
    quota_cores: int = 20
    quota_ram: int = 51200  # MB
    quota_key_pairs: int = 100
    # Nova's allocation ratios (its ``initial_*_allocation_ratio`` defaults since Stein):
    # the claims on a host may add up to its vCPUs, RAM and disk times these, so a 2-core
    # host takes eight 1-vCPU servers. The hypervisor views still show the physical sizes.
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)

    @property
    def image_store(self) -> Path:
        return self.images_dir or self.data_dir / "images"

    @property
    def detach_unplug_s(self) -> float:
        """How long a host may go on asking the guest to let a device go: every attempt,
        each with libvirt's own wait for the guest on top of ``device_detach_timeout``."""
        return self.device_detach_attempts * (self.device_detach_timeout + UNPLUG_SLACK_S)

    @property
    def detach_deadline_s(self) -> float:
        """A whole detach: the unplug and the calls around it (the volume or port let go,
        or the detach rolled back). Past it the sweeper rolls back what is left."""
        return self.detach_unplug_s + 5 * self.rpc_timeout_s
