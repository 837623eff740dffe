"""The volume-api process: Block Storage v3 over HTTP, the ``volume`` RPC topic, its events.

volume-api                                    # uvicorn, settings from VOLUME_*
app = create_app(VolumeSettings(data_dir=tmp))   # what the tests serve
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import nova_fault
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime

from .api import versions
from .settings import VolumeSettings

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def create_app(settings: VolumeSettings | None = None) -> FastAPI:
    """The composition root: one runtime, its RPC topic and the HTTP routes."""
    settings = settings or VolumeSettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    runtime.serve("volume", runtime, ping_router("volume", settings.host))
    return make_app(
        settings,
        runtime,
        title="Stackling Block Storage",
        version="3.0",
        fault_formatter=nova_fault,
        extensions_prefix="/v3",
        public_paths=versions.PUBLIC_PATHS,
        routers=[versions.router],
    )


def main() -> None:
    settings = VolumeSettings()
    run_app(create_app(settings), settings)
