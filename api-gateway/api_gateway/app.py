"""The stackling-gateway process: identity, catalog, policy, proxy and the event stream.

    stackling-gateway                                  # uvicorn, settings from GATEWAY_*
    app = create_app(GatewaySettings(data_dir=tmp))    # what the tests serve

Routes: ``/identity`` (Identity v3), ``/compute``, ``/network``, ``/volume``, ``/image``
(forwarded to a healthy replica of the owning service after the token and the policy
table allowed it) and ``/v1/events`` (Server-Sent Events of the caller's project).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import fault_bytes, keystone_fault
from common_rpc.chassis.identity import IdentitySigner
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.startup import check_writable_dir, env_names, load_identity_key

from .api.events import events_router
from .api.proxy import Proxy, install_proxy
from .domain.bootstrap import MIGRATIONS, Bootstrap
from .domain.events import EventStream
from .domain.tokens import TokenService
from .identity import identity_router
from .identity.schemas import keystone_validation_message
from .settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The composition root: one runtime, the token service, and the edge around them."""
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    runtime.serve("gateway", runtime, ping_router("gateway", settings.host))
    tokens = TokenService.from_settings(runtime.sessions, settings)
    # The gateway checks X-Auth-Token itself; no route expects the services' signed header.
    app = make_app(
        settings,
        runtime,
        title="Stackling Gateway",
        version="3.14",
        fault_formatter=keystone_fault,
        public_paths=("/*",),
    )
    # Bodies that do not fit answer Keystone's words, not the chassis' generic ones.
    app.add_exception_handler(RequestValidationError, keystone_validation_fault)
    app.include_router(identity_router(settings, runtime.sessions, tokens), prefix="/identity")
    signer = load_identity_key(
        IdentitySigner, settings.identity_private_key_file, settings, "identity_private_key_path"
    )
    proxy = Proxy(settings, tokens, signer)
    events = EventStream(runtime.broker)
    install_proxy(app, proxy)
    app.include_router(events_router(events, tokens))
    # Bootstrap runs after the migrations and before the first request is served.
    add_lifespan(app, Bootstrap(runtime.sessions, settings), tokens, proxy, events)
    app.state.tokens = tokens
    return app


async def keystone_validation_fault(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = keystone_validation_message(list(exc.errors()))
    return Response(
        fault_bytes(keystone_fault, 400, message), status_code=400, media_type="application/json"
    )


def main() -> None:
    settings = GatewaySettings()
    app = create_app(settings)
    # The bootstrap writes credentials.json there and clouds.yaml (by default) too.
    check_writable_dir(
        settings.data_dir, "data directory", f"fix {env_names(settings, 'data_dir')}"
    )
    check_writable_dir(
        settings.clouds_yaml_file.parent,
        "clouds.yaml directory",
        f"fix {env_names(settings, 'clouds_yaml_path')}",
    )
    run_app(app, settings)


class Lifecycle(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def add_lifespan(app: FastAPI, *parts: Lifecycle) -> None:
    """Start ``parts`` after the app's lifespan started (broker up), stop them before it stops."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            started: list[Lifecycle] = []
            try:
                for part in parts:
                    await part.start()
                    started.append(part)
                yield state
            finally:
                for part in reversed(started):
                    await part.stop()

    app.router.lifespan_context = lifespan
