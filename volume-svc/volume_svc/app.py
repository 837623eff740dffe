"""The volume-api process: Block Storage v3 over HTTP, the ``volume`` RPC topic, its events.

volume-api                                    # uvicorn, settings from VOLUME_*
app = create_app(VolumeSettings(data_dir=tmp))   # what the tests serve

Error bodies are Cinder's, which share Nova's fault names (``itemNotFound``,
``badRequest``, ``overLimit``...): the chassis' ``nova_fault`` renders them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.agents import agents_router
from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.faults import nova_fault
from common_rpc.chassis.ping import ping_router
from common_rpc.chassis.runtime import ServiceRuntime

from .api import (
    attachments,
    backups,
    extensions,
    limits,
    quotas,
    services,
    snapshots,
    transfers,
    types,
    versions,
    volumes,
)
from .db.models import Attachment, Backup, Snapshot, Volume, VolumeExport
from .rpc.handlers import rpc as volume_rpc
from .settings import VolumeSettings
from .wiring import Deps

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


async def _drop_export(session: AsyncSession, vol: Any) -> None:
    # An attach abandoned past its deadline: forget the export (reconcile removes the
    # target) and the attachments API's unfinished attachment, if it made one.
    await session.execute(delete(VolumeExport).where(VolumeExport.volume_id == vol.id))
    await session.execute(
        delete(Attachment).where(Attachment.volume_id == vol.id, Attachment.status != "attached")
    )


def register_sweeps(runtime: ServiceRuntime) -> None:
    """Transitional states past their deadline move to where an operator can act."""
    sweeper = runtime.sweeper
    assert sweeper is not None
    sweeper.register(Volume, "creating", to="error")
    sweeper.register(Volume, "deleting", to="error_deleting")
    sweeper.register(Volume, "extending", to="error_extending")
    sweeper.register(Volume, "reserved", on_expire=_drop_export, to="available")
    sweeper.register(Volume, "attaching", on_expire=_drop_export, to="available")
    sweeper.register(Volume, "detaching", to="in-use")
    sweeper.register(Snapshot, "creating", to="error")
    sweeper.register(Snapshot, "deleting", to="error_deleting")
    # A backup only reads its volume: past the deadline the volume is usable again.
    sweeper.register(Volume, "backing-up", to="available")
    sweeper.register(Volume, "restoring-backup", to="error_restoring")
    # An upload only reads its volume (the image it made stays queued for its owner).
    sweeper.register(Volume, "uploading", to="available")
    sweeper.register(Backup, "creating", to="error")
    sweeper.register(Backup, "deleting", to="error_deleting")
    sweeper.register(Backup, "restoring", to="available")


def create_app(settings: VolumeSettings | None = None) -> FastAPI:
    """The composition root: one runtime, its RPC topic and the HTTP routes."""
    settings = settings or VolumeSettings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    deps = Deps.build(runtime)
    runtime.serve(
        settings.rpc_topic,
        deps,
        ping_router("volume", settings.host),
        volume_rpc,
        agents_router(runtime.sessions),
    )
    register_sweeps(runtime)
    app = make_app(
        settings,
        runtime,
        title="Stackling Block Storage",
        version="3.0",
        fault_formatter=nova_fault,
        extensions_prefix="/v3",
        builtin_extensions=extensions.BUILTIN,
        public_paths=versions.PUBLIC_PATHS,
        routers=[
            versions.router,
            volumes.router,
            snapshots.router,
            types.router,
            quotas.router,
            services.router,
            limits.router,
            transfers.legacy_router,
            transfers.router,
            attachments.router,
            backups.router,
        ],
    )
    app.state.deps = deps
    return app


def main() -> None:
    settings = VolumeSettings()
    run_app(create_app(settings), settings)
