"""Settings of the gateway, from ``GATEWAY_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``GATEWAY_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> GatewaySettings(port=1234).port
    1234
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.addresses import canonical_url
from common_rpc.chassis.settings import ServiceSettings

_PLAIN_PUBLIC_URL = "http://127.0.0.1:8080"


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8080
    # TLS at the door: with both set the gateway serves HTTPS only (PEM files, the key
    # unencrypted; the certificate file may hold the chain after it).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = Field(None, validate_default=True)
    # The CA clients are to trust for it (a private one): written as clouds.yaml's cacert.
    tls_ca_file: Path | None = None
    # The address clients use to reach the gateway; catalog and version links are built on it.
    # https when TLS is on (the default then turns https; an explicit http one is refused).
    public_url: str = Field(_PLAIN_PUBLIC_URL, validate_default=True)
    # Nova's and Keystone's max_request_body_size: a larger body is refused with a 413 before
    # it is read. Image data (PUT /image/v2/images/{id}/file) is streamed and not limited.
    max_request_body_bytes: int = Field(114688, ge=1)
    # A slow or stalled client is dropped (408): its request line and headers must arrive
    # within this, a limited body within this of its headers, and an image upload may not
    # pause longer than this between chunks.
    request_timeout_s: float = Field(30.0, gt=0)
    # An idle keep-alive connection is closed after this (uvicorn's timeout_keep_alive).
    keep_alive_s: int = Field(5, ge=1)
    region: str = "RegionOne"
    # Replicas of each service's API: the catalog lists only the services configured here.
    compute_urls: list[str] = Field(default_factory=list)
    network_urls: list[str] = Field(default_factory=list)
    volume_urls: list[str] = Field(default_factory=list)
    # How long a token lives (Keystone's [token] expiration).
    token_ttl_s: int = Field(3600, ge=1)
    # How long a validated token is trusted from memory before the database is asked again:
    # the bound on how late another replica sees a revocation (``domain/tokens.py``).
    token_cache_s: float = Field(5.0, ge=0)
    # Keystone's [security_compliance]: after this many failed password attempts in a row a
    # user is locked out for ``lockout_duration_s`` (0: never), or until an admin enables it.
    lockout_failure_attempts: int = Field(0, ge=0)
    lockout_duration_s: int = Field(1800, ge=1)
    # New passwords must match this regex (empty: any); the description is the 400's text.
    password_regex: str = ""
    password_regex_description: str = ""
    identity_private_key_path: Path | None = None
    # Bootstrap: created on first start when missing; a password left empty is generated
    # and printed once.
    admin_user: str = "admin"
    admin_password: str = ""
    admin_project: str = "admin"
    demo_user: str = "demo"
    demo_password: str = ""
    demo_project: str = "demo"
    clouds_yaml_path: Path | None = None

    @field_validator("public_url")
    @classmethod
    def _canonical_public_url(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("tls_cert_file") is not None and not value.startswith("https://"):
            if value != _PLAIN_PUBLIC_URL:
                raise ValueError("must be https:// when GATEWAY_TLS_CERT_FILE is set")
            value = "https://" + value.removeprefix("http://")
        # Echoed in the catalog, version links and clouds.yaml: IPv6 hosts per RFC 5952.
        return canonical_url(value)

    @field_validator("tls_cert_file", "tls_key_file", "tls_ca_file", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # docker-compose passes an unset ${VAR:-} as an empty string: no file.
        return None if value == "" else value

    @field_validator("tls_key_file")
    @classmethod
    def _tls_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (value is None) != (info.data.get("tls_cert_file") is None):
            raise ValueError("GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE go together")
        return value

    @field_validator("password_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)  # a bad pattern stops the start, not every password change
        return value

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @field_validator("compute_urls", "network_urls", "volume_urls")
    @classmethod
    def _canonical_urls(cls, value: list[str]) -> list[str]:
        return [canonical_url(url) for url in value]

    @property
    def identity_private_key_file(self) -> Path:
        return self.identity_private_key_path or self.data_dir / "keys" / "identity.key"

    @property
    def clouds_yaml_file(self) -> Path:
        return self.clouds_yaml_path or self.data_dir / "clouds.yaml"

    def service_urls(self) -> dict[str, list[str]]:
        """Configured API replicas by catalog service name; empty ones are left out."""
        urls = {
            "compute": self.compute_urls,
            "network": self.network_urls,
            "volume": self.volume_urls,
        }
        return {name: replicas for name, replicas in urls.items() if replicas}
