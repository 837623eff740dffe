"""The compute-api process: Compute v2.1 over HTTP, the ``compute`` RPC topic, its events.

compute-api                                     # uvicorn, settings from COMPUTE_*
app = create_app(ComputeSettings(data_dir=tmp))  # what the tests serve
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from common_rpc.agents import agents_router
from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import nova_fault
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime

from .api import (
    admin,
    compute_images,
    extensions,
    faults,
    flavors,
    images,
    instance_actions,
    interfaces,
    keypairs,
    limits,
    microversion,
    quotas,
    server_groups,
    servers,
    tenant_usage,
    versions,
)
from .domain import floating_ips, port_events, sweeps, takeover, usage
from .rpc.handlers import rpc
from .settings import ComputeSettings
from .wiring import Deps

MIGRATIONS = Path(__file__).parent / "db" / "migrations"
DRAIN_S = 10.0
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: ComputeSettings | None = None) -> FastAPI:
    """The composition root: one runtime, its RPC topic, subscriptions and HTTP routes."""
    settings = settings or ComputeSettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    deps = Deps.build(runtime)
    runtime.serve(
        "compute",
        deps,
        ping_router("compute", settings.host),
        rpc,
        agents_router(runtime.sessions),
    )
    sweeps.register_sweeps(deps)
    takeover.register(deps)  # boots and deletes of a replica that died go on here
    runtime.subscribe("compute", port_events.PATTERNS, deps.ports.on_event)
    floating_ips.register(deps)  # servers' addresses show them, from network's events
    usage.register(deps)  # the ledger os-simple-tenant-usage bills deleted servers from
    app = make_app(
        settings,
        runtime,
        title="Stackling Compute",
        version="2.1",
        fault_formatter=nova_fault,
        extensions_prefix="/v2.1",
        public_paths=versions.PUBLIC_PATHS,
        routers=[
            versions.router,
            flavors.router,
            keypairs.router,
            images.router,
            servers.router,
            interfaces.router,
            instance_actions.router,
            admin.router,
            limits.router,
            quotas.router,
            compute_images.router,
            tenant_usage.router,
            extensions.router,
            server_groups.router,
        ],
    )
    faults.install(app)
    microversion.install(app)
    app.state.deps = deps
    app.router.lifespan_context = _draining(app.router.lifespan_context, deps)
    return app


def _draining(inner: Lifespan, deps: Deps) -> Lifespan:
    """Boots and deletes in flight get a moment to finish before the runtime stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            yield
            await deps.tasks.drain(DRAIN_S)

    return lifespan


def main() -> None:
    settings = ComputeSettings()
    run_app(create_app(settings), settings)
