"""Settings of the gateway processes, from ``GATEWAY_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``GATEWAY_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> GatewaySettings(port=1234).port
    1234
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8080
