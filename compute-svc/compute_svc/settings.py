"""Settings of the compute processes, from ``COMPUTE_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``COMPUTE_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> ComputeSettings(port=1234).port
    1234
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings


class ComputeSettings(ServiceSettings):
    service_name: ClassVar[str] = "compute"
    model_config = SettingsConfigDict(env_prefix="COMPUTE_", extra="ignore")

    port: int = 8774
    # Where image data lives (one file per image id); defaults to ``<data_dir>/images``.
    images_dir: Path | None = None
    # A server still in BUILD after this goes to ERROR (the sweeper).
    build_timeout_s: float = 600.0
    # A delete that has not converged after this is retried.
    delete_timeout_s: float = 300.0
    # Deadlines of the calls a boot makes.
    rpc_timeout_s: float = 30.0
    spawn_timeout_s: float = 300.0
    # An agent silent for longer is down: the scheduler skips its host.
    agent_down_after_s: float = 30.0
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

    @property
    def image_store(self) -> Path:
        return self.images_dir or self.data_dir / "images"
