"""The stackling-gateway process: the gateway over HTTP, the ``gateway`` RPC topic, its events.

stackling-gateway                                    # uvicorn, settings from GATEWAY_*
app = create_app(GatewaySettings(data_dir=tmp))   # what the tests serve
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import keystone_fault
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime

from .settings import GatewaySettings

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The composition root: one runtime, its RPC topic and the HTTP routes."""
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    runtime.serve("gateway", runtime, ping_router("gateway", settings.host))
    return make_app(
        settings, runtime, title="Stackling Gateway", version="3.14", fault_formatter=keystone_fault
    )


def main() -> None:
    settings = GatewaySettings()
    run_app(create_app(settings), settings)
