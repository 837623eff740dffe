"""Helpers of the gateway's identity tests: settings, the app, auth bodies, handles.

    settings = gateway_settings(tmp_path, db_url, PUBLIC_URL)
    app = build_app(settings)          # the gateway app with the identity API under /identity
    await gateway.login("demo", DEMO_PASSWORD, "demo")   # a token (Gateway: see conftest)

``conftest.py`` turns these into fixtures; test modules import the helpers by name.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api_gateway.app import create_app
from api_gateway.domain.bootstrap import prepare
from api_gateway.domain.tokens import TokenService
from api_gateway.settings import GatewaySettings
from common_rpc.chassis.identity import generate_keypair
from common_rpc.testing import free_port

# The real ``openstack`` client of the venv the tests run in.
OPENSTACK = Path(sys.executable).parent / "openstack"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PUBLIC_URL = "http://gateway.test"
ADMIN_PASSWORD = "admin-secret"
DEMO_PASSWORD = "demo-secret"


def gateway_settings(data_dir: Path, db_url: str, public_url: str) -> GatewaySettings:
    """Every service configured, so the catalog lists them all; fixed bootstrap passwords."""
    return GatewaySettings(
        data_dir=data_dir,
        db_url=db_url,
        public_url=public_url,
        compute_urls=["http://127.0.0.1:9"],
        network_urls=["http://127.0.0.1:9"],
        volume_urls=["http://127.0.0.1:9"],
        admin_password=ADMIN_PASSWORD,
        demo_password=DEMO_PASSWORD,
    )


def build_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app exactly as ``stackling-gateway`` serves it (keys made on demand)."""
    generate_keypair(settings.data_dir / "keys")
    return create_app(settings)


def password_auth(user: str, password: str, project: str | None = None) -> dict[str, Any]:
    """A Keystone password-auth body, as keystoneauth sends it."""
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": user, "domain": {"name": "Default"}, "password": password}
            },
        }
    }
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return {"auth": auth}


@dataclass
class Gateway:
    """The app in-process: its client, settings, token service and bootstrap result."""

    http: httpx.AsyncClient
    settings: GatewaySettings
    tokens: TokenService
    accounts: dict[str, Any]

    async def login(self, user: str, password: str, project: str | None = None) -> str:
        reply = await self.http.post(
            "/identity/v3/auth/tokens", json=password_auth(user, password, project)
        )
        assert reply.status_code == 201, reply.text
        return reply.headers["X-Subject-Token"]

    async def admin_token(self) -> str:
        return await self.login("admin", ADMIN_PASSWORD, "admin")

    async def demo_token(self) -> str:
        return await self.login("demo", DEMO_PASSWORD, "demo")


@dataclass
class LiveGateway:
    url: str
    settings: GatewaySettings
    accounts: dict[str, Any]


@contextmanager
def start_live_gateway(data_dir: Path, **overrides: Any) -> Iterator[LiveGateway]:
    """The gateway on a real port (uvicorn in a thread), bootstrapped like ``main`` does;
    ``overrides`` change its settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = gateway_settings(data_dir, f"sqlite+aiosqlite:///{data_dir}/gateway.db", url)
    settings = settings.model_copy(update=overrides)
    accounts = asyncio.run(prepare(settings))
    config = uvicorn.Config(
        build_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield LiveGateway(url, settings, accounts)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def openstack_cli(
    gateway: LiveGateway, *args: str, cloud: str = "stackling-admin", check: bool = True
) -> Any:
    """Run the ``openstack`` CLI against the live gateway with the bootstrap's clouds.yaml.

    Returns the parsed JSON of ``-f json`` commands, the text otherwise (commands that print
    nothing); ``check=False`` returns the finished process instead. ``cloud=""``: no cloud,
    the auth options are all in ``args``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OS_")  # nothing of the machine's own cloud
    }
    env["OS_CLIENT_CONFIG_FILE"] = str(gateway.settings.clouds_yaml_file)
    done = subprocess.run(
        [str(OPENSTACK), *(("--os-cloud", cloud) if cloud else ()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if not check:
        return done
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout) if "json" in args else done.stdout
