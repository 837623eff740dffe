"""Shared by the proxy, policy and event-stream tests: a fake token validator, real servers.

    validator = FakeTokenValidator()
    token = validator.issue("p1", "member")                  # effective roles: member, reader
    app = build_gateway(settings, validator, signer)         # proxy + events, as app.py wires them
    with serve(app) as url:                                  # uvicorn on a free port, in a thread
        httpx.get(f"{url}/network/v2.0/networks", headers={"X-Auth-Token": token})

Services behind the proxy are real too: chassis apps (``make_app``) under uvicorn, which
verify the signed identity header exactly as production services do.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI

from api_gateway.api.events import PUBLIC_PATHS, events_router
from api_gateway.api.proxy import Proxy, install_proxy
from api_gateway.app import add_lifespan
from api_gateway.domain.auth import AuthContext, effective_roles
from api_gateway.domain.events import EventStream
from api_gateway.settings import GatewaySettings
from common_rpc.chassis.app import make_app
from common_rpc.chassis.faults import keystone_fault
from common_rpc.chassis.identity import IdentitySigner
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.testing import free_port


class FakeTokenValidator:
    """The identity side reduced to a dict: token -> AuthContext."""

    def __init__(self) -> None:
        self.tokens: dict[str, AuthContext] = {}

    def issue(self, project_id: str | None, *roles: str, user_id: str | None = None) -> str:
        token = f"tok-{uuid.uuid4().hex}"
        user = user_id or f"user-{uuid.uuid4().hex[:8]}"
        self.tokens[token] = AuthContext(
            token_id=token,
            user_id=user,
            user_name=user,
            project_id=project_id,
            project_name=project_id,
            roles=effective_roles(set(roles)),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        return token

    async def validate(self, token: str) -> AuthContext | None:
        return self.tokens.get(token)


def build_gateway(
    settings: GatewaySettings,
    validator: FakeTokenValidator,
    signer: IdentitySigner,
    *,
    heartbeat_s: float = 15.0,
    client_queue_size: int = 256,
    **proxy_options: Any,
) -> FastAPI:
    """The gateway's edge as app.py wires it, minus the identity API and its database."""
    runtime = ServiceRuntime(settings, database=False)
    app = make_app(
        settings,
        runtime,
        title="Stackling Gateway",
        version="3.14",
        fault_formatter=keystone_fault,
        public_paths=PUBLIC_PATHS,
    )
    proxy = Proxy(settings, validator, signer, **proxy_options)
    stream = EventStream(
        runtime.broker, heartbeat_s=heartbeat_s, client_queue_size=client_queue_size
    )
    install_proxy(app, proxy)
    app.include_router(events_router(stream, validator))
    add_lifespan(app, proxy, stream)
    app.state.proxy = proxy
    app.state.events = stream
    return app


class LiveServer:
    """An ASGI app under uvicorn on 127.0.0.1, in a thread with its own event loop."""

    def __init__(self, app: Any, port: int | None = None, **options: Any) -> None:
        """``options``: more of uvicorn's (``server_options(settings)``: TLS, time limits)."""
        self.port = port or free_port()
        self.scheme = "https" if options.get("ssl_certfile") else "http"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` for the block; yields its base URL."""
    server = LiveServer(app, **options)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a plain (thread-safe) predicate from async code."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)
