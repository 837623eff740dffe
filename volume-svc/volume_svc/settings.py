"""Settings of the volume processes, from ``VOLUME_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``VOLUME_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> VolumeSettings(port=1234).port
    1234
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings


class VolumeSettings(ServiceSettings):
    service_name: ClassVar[str] = "volume"
    model_config = SettingsConfigDict(env_prefix="VOLUME_", extra="ignore")

    port: int = 8776
    # The RPC topic the API serves (tests serve it under a name of their own).
    rpc_topic: str = "volume"
    # The volume-agent host new volumes are placed on ("" = this process' host).
    backend_host: str = ""
    # Deadline of each call to an agent; data copies of large volumes take longer.
    agent_timeout: float = 30.0
    agent_copy_timeout: float = 600.0
    # Transitional states older than this are swept to an error state.
    task_deadline_s: float = 900.0
    # Default quotas per project (-1: unlimited); admins change them with os-quota-sets.
    quota_volumes: int = 10
    quota_gigabytes: int = 1000
    quota_snapshots: int = 10
    quota_backups: int = 10
    quota_backup_gigabytes: int = 1000
    # An absurd size is refused before it reaches quotas or a backend.
    max_volume_size_gb: int = 16384
    default_volume_type: str = "__DEFAULT__"
    # The Image v2 API (compute-svc serves it under /image): volumes made from an image
    # read its record here, and the volume host its bytes, as the caller (its signed
    # identity); the host must reach this URL. Deadline of the record's read.
    image_url: str = "http://127.0.0.1:8774/image"
    image_timeout: float = 30.0
    availability_zone: str = "nova"

    def volume_host(self) -> str:
        return self.backend_host or self.host
