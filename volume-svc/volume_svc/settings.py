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
