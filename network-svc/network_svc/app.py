"""The network-api process: Networking v2.0 over HTTP, the ``network`` RPC topic, its events.

network-api                                    # uvicorn, settings from NETWORK_*
app = create_app(NetworkSettings(data_dir=tmp))   # what the tests serve
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from common_rpc.agents import agents_router
from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import neutron_fault
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime

from .api import faults, versions
from .api.agents import router as agents_router_api
from .api.availability_zones import router as availability_zones_router
from .api.extensions import BUILTIN
from .api.floatingips import router as floatingips_router
from .api.ip_availability import router as ip_availability_router
from .api.networks import router as networks_router
from .api.ports import router as ports_router
from .api.quotas import router as quotas_router
from .api.routers import router as routers_router
from .api.security_groups import groups as security_groups_router
from .api.security_groups import rules as security_group_rules_router
from .api.subnets import router as subnets_router
from .api.tags import router as tags_router
from .rpc.handlers import rpc as network_rpc
from .settings import NetworkSettings
from .wiring import Deps

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def create_app(settings: NetworkSettings | None = None) -> FastAPI:
    """The composition root: one runtime, its RPC topic and the HTTP routes."""
    settings = settings or NetworkSettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    deps = Deps.build(runtime)
    runtime.serve(
        settings.rpc_topic,
        deps,
        ping_router("network", settings.host),
        network_rpc,
        agents_router(runtime.sessions),
    )
    app = make_app(
        settings,
        runtime,
        title="Stackling Networking",
        version="2.0",
        fault_formatter=neutron_fault,
        extensions_prefix="/v2.0",
        public_paths=versions.PUBLIC_PATHS,
        routers=[
            versions.router,
            networks_router,
            subnets_router,
            ports_router,
            security_groups_router,
            security_group_rules_router,
            agents_router_api,
            routers_router,
            floatingips_router,
            quotas_router,
            tags_router,
            ip_availability_router,
            availability_zones_router,
        ],
        builtin_extensions=BUILTIN,
    )
    app.state.deps = deps
    faults.install(app)
    return app


def main() -> None:
    settings = NetworkSettings()
    run_app(create_app(settings), settings)
