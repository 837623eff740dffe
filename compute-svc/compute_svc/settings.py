"""Settings of the compute processes, from ``COMPUTE_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``COMPUTE_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> ComputeSettings(port=1234).port
    1234
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings


class ComputeSettings(ServiceSettings):
    service_name: ClassVar[str] = "compute"
    model_config = SettingsConfigDict(env_prefix="COMPUTE_", extra="ignore")

    port: int = 8774
