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

A value that does not parse raises ``SettingsError`` (a ``StartupError``): one line naming
the variable, its value and what is wrong, which a process prints instead of a traceback.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, ClassVar, Literal

import pydantic_settings
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ..broker import MessagingConfig
from .startup import StartupError, check_database_url, install_excepthook

# Every process builds its settings before anything else: from here on a StartupError
# that reaches the top prints one line, not a traceback.
install_excepthook()

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


class SettingsError(StartupError, ValueError):
    """A setting that does not parse: which variable, its value, what is wrong."""


class ServiceSettings(BaseSettings):
    """Base settings of a service process; subclasses set ``service_name`` and a prefix."""

    service_name: ClassVar[str] = "service"
    # A tool with no settings of its own (``stackling audit``) reads only STACKLING_*.
    shared_settings_only: ClassVar[bool] = False
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
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A service's settings read ``<SVC>_*``: a class that would read ``STACKLING_*``
        for everything (a second base's config won the merge, as with a mixin such as the
        chassis ``AgentSettings`` listed last) is refused when it is defined."""
        super().__pydantic_init_subclass__(**kwargs)
        shared = cls.model_config.get("env_prefix") == SHARED_PREFIX
        if shared and cls.service_name != "service" and not cls.shared_settings_only:
            raise TypeError(
                f"{cls.__name__} ({cls.service_name}) reads {SHARED_PREFIX}* for every setting:"
                " give it model_config = SettingsConfigDict(env_prefix=...)"
            )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_invalid(type(self), exc, values)) from None
        except pydantic_settings.SettingsError as exc:
            raise SettingsError(_unparsable(type(self), exc)) from None

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

    @field_validator("db_url")
    @classmethod
    def _usable_db_url(cls, value: str | None) -> str | None:
        return check_database_url(value) if value else value

    @model_validator(mode="after")
    def _derive_paths(self) -> ServiceSettings:
        # Derived from data_dir after loading, so a data_dir override moves them too.
        if self.identity_public_key_path is None:
            self.identity_public_key_path = self.data_dir / "keys" / "identity.pub"
        return self

    def env_names(self, field: str) -> str:
        """The variables a setting is read from: ``NETWORK_DB_URL`` (``or STACKLING_...``)."""
        own = f"{self.model_config.get('env_prefix', '')}{field}".upper()
        if field in SHARED_SETTINGS and not own.startswith(SHARED_PREFIX):
            return f"{own} or {SHARED_PREFIX}{field.upper()}"
        return own

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


def _variable(cls: type[ServiceSettings], field: str, given: dict[str, Any]) -> str:
    """Where a value came from: a constructor argument or the variable that is set."""
    if field in given:
        return field
    own = f"{cls.model_config.get('env_prefix', '')}{field}".upper()
    shared = f"{SHARED_PREFIX}{field}".upper()
    if own not in os.environ and field in SHARED_SETTINGS and shared in os.environ:
        return shared
    return own


def _shown_value(field: str, value: Any) -> str:
    if any(secret in field for secret in ("password", "secret", "url")):
        return ""  # may carry a password
    text = repr(value)
    return f"={text[:60]}{'...' if len(text) > 60 else ''}"


def _invalid(cls: type[ServiceSettings], exc: ValidationError, given: dict[str, Any]) -> str:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        field = loc[0] if loc else "?"
        where = ".".join([_variable(cls, field, given), *loc[1:]])
        value = _shown_value(field, err.get("input")) if "input" in err else ""
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}{value}: {message}")
    return f"bad setting {'; '.join(problems)}; fix it in the environment"


def _unparsable(cls: type[ServiceSettings], exc: pydantic_settings.SettingsError) -> str:
    # pydantic-settings: 'error parsing value for field "x" from source "..."' (JSON values)
    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else "?"
    reason = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
    return (
        f"bad setting {_variable(cls, field, {})}: not valid JSON{reason}; "
        'lists and dicts are JSON, e.g. \'["a"]\' or \'{"k": "v"}\''
    )
