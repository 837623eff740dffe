"""Settings of the network processes, from ``NETWORK_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``NETWORK_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> NetworkSettings(port=1234).port
    1234
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings


class NetworkSettings(ServiceSettings):
    service_name: ClassVar[str] = "network"
    model_config = SettingsConfigDict(env_prefix="NETWORK_", extra="ignore")

    port: int = 9696
