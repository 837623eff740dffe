"""Settings every Stackling process shares; each service subclasses them with its prefix.

    class Settings(ServiceSettings):
        service_name: ClassVar[str] = "network"
        model_config = SettingsConfigDict(env_prefix="NETWORK_")
        port: int = 9696

    settings = Settings()          # NETWORK_DB_URL, NETWORK_AMQP_URL, ... from the environment
    settings.database_url          # sqlite+aiosqlite:////.../data/network.db when unset

Precedence, highest first: constructor arguments, ``<SVC>_<NAME>`` variables, the shared
``STACKLING_<NAME>`` variables (only for the settings in ``SHARED_SETTINGS``, so one line
in an all-in-one environment points every service at the same broker), then defaults.
Dicts and lists are JSON in the environment: ``NETWORK_DRIVERS='{"l2": "linux"}'``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ..broker import MessagingConfig

SHARED_PREFIX = "STACKLING_"

# Settings that make sense machine-wide; a DB URL, a port or a driver choice never do.
SHARED_SETTINGS = frozenset(
    {
        "host",
        "bind_host",
        "data_dir",
        "amqp_url",
        "amqp_topic_urls",
        "amqp_events_url",
        "rpc_queue_type",
        "event_delivery_limit",
        "identity_public_key_path",
        "log_level",
        "log_json",
    }
)


class SharedEnvSource(EnvSettingsSource):
    """``STACKLING_<NAME>`` variables, read only for the names in ``SHARED_SETTINGS``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, env_prefix=SHARED_PREFIX)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in SHARED_SETTINGS:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class ServiceSettings(BaseSettings):
    """Base settings of a service process; subclasses set ``service_name`` and a prefix."""

    service_name: ClassVar[str] = "service"
    model_config = SettingsConfigDict(env_prefix=SHARED_PREFIX, extra="ignore")

    host: str = Field(default_factory=socket.gethostname)
    bind_host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    db_url: str | None = None
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_topic_urls: dict[str, str] = Field(default_factory=dict)
    amqp_events_url: str | None = None
    rpc_queue_type: Literal["classic", "quorum"] = "classic"
    event_delivery_limit: int = 5
    identity_public_key_path: Path | None = None
    log_level: str = "INFO"
    log_json: bool = True
    extensions: list[str] = Field(default_factory=list)
    drivers: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SharedEnvSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _derive_paths(self) -> ServiceSettings:
        # Derived from data_dir after loading, so a data_dir override moves them too.
        if self.identity_public_key_path is None:
            self.identity_public_key_path = self.data_dir / "keys" / "identity.pub"
        return self

    @property
    def database_url(self) -> str:
        """``db_url``, or one SQLite file per service under ``data_dir``."""
        if self.db_url:
            return self.db_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"

    @property
    def identity_key_file(self) -> Path:
        """Where the gateway's public key is (``identity_public_key_path``, always set)."""
        assert self.identity_public_key_path is not None
        return self.identity_public_key_path

    def messaging(self) -> MessagingConfig:
        return MessagingConfig(
            url=self.amqp_url,
            topic_urls=self.amqp_topic_urls,
            events_url=self.amqp_events_url,
            rpc_queue_type=self.rpc_queue_type,
            event_delivery_limit=self.event_delivery_limit,
        )
