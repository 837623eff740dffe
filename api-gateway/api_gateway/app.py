"""The stackling-gateway process: identity, catalog, policy, proxy and the event stream.

    stackling-gateway                                  # uvicorn, settings from GATEWAY_*
    app = create_app(GatewaySettings(data_dir=tmp))    # what the tests serve
    app.state.deps                                     # wiring.Deps: tokens, passwords, ...

Routes: ``/identity`` (Identity v3), ``/compute``, ``/network``, ``/volume``, ``/image``
(forwarded to a healthy replica of the owning service after the token and the policy
table allowed it), ``/v1/events`` (Server-Sent Events of the caller's project) and
``/console/`` (the web console: static files and its session, ``api/console.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI

from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import keystone_fault
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.startup import check_writable_dir, env_names

from .api import schemas
from .api.console import install_console
from .api.events import events_router
from .api.identity import identity_router
from .api.limits import install_limits
from .api.proxy import Proxy, install_proxy
from .domain.bootstrap import MIGRATIONS, Bootstrap
from .server import check_tls, server_options
from .settings import GatewaySettings
from .wiring import Deps


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The composition root: one runtime and its Deps, the identity API and the edge."""
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    deps = Deps.build(runtime)
    runtime.serve("gateway", deps, ping_router("gateway", settings.host))
    # The gateway checks X-Auth-Token itself; no route expects the services' signed header.
    app = make_app(
        settings,
        runtime,
        title="Stackling Gateway",
        version="3.14",
        fault_formatter=keystone_fault,
        public_paths=("/*",),
    )
    schemas.install(app)  # bodies that do not fit: Keystone's words
    app.include_router(identity_router(deps), prefix="/identity")
    proxy = Proxy(settings, deps.tokens, deps.signer)
    install_proxy(app, proxy)
    # Open event streams recheck their token as often as other replicas see a revocation.
    recheck_s = max(settings.token_cache_s, 1.0)
    app.include_router(events_router(deps.events, deps.tokens, recheck_s=recheck_s))
    # The web console: its files, its session, and the cookie edge (outermost).
    install_console(app, deps)
    # Outermost: a body over the limit or too slow is cut before anything else reads it.
    install_limits(app, settings)
    # Bootstrap runs after the migrations and before the first request is served.
    add_lifespan(app, Bootstrap(runtime.sessions, settings), deps.tokens, proxy, deps.events)
    app.state.deps = deps
    return app


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
    check_tls(settings)
    run_app(app, settings, **server_options(settings))


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
