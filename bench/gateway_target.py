"""The service behind the gateway benchmark: a database-backed list, as a real API has.

A chassis app (it verifies the gateway-signed identity header for real) serving
``GET /v2.0/networks`` from its own SQLite table, filtered by the caller's project, and
``POST /v2.0/networks`` to seed it. It stands in for network-api until that service has
its own list; the shape of the work (identity check, one indexed query, JSON) is the same.

    python -m bench.gateway_target PORT DATA_DIR
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any, ClassVar

from fastapi import APIRouter, Request
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Index, String, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc import current_context
from common_rpc.chassis.app import make_app, run_app
from common_rpc.chassis.db import make_engine
from common_rpc.chassis.faults import neutron_fault
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.settings import ServiceSettings
from common_rpc.tables import chassis_metadata


class Base(DeclarativeBase):
    pass


class Network(Base):
    __tablename__ = "networks"
    __table_args__ = (Index("ix_networks_project", "project_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))


class TargetSettings(ServiceSettings):
    service_name: ClassVar[str] = "benchtarget"
    model_config = SettingsConfigDict(env_prefix="BENCHTARGET_", extra="ignore")


def _view(row: Network) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "tenant_id": row.project_id, "status": "ACTIVE"}


def create_app(settings: TargetSettings) -> Any:
    runtime = ServiceRuntime(settings)
    router = APIRouter()

    @router.get("/v2.0/networks")
    async def list_networks() -> dict[str, Any]:
        project = current_context().project_id
        async with runtime.sessions() as session:
            rows = (
                await session.scalars(select(Network).where(Network.project_id == project))
            ).all()
        return {"networks": [_view(r) for r in rows]}

    @router.post("/v2.0/networks", status_code=201)
    async def create_network(request: Request) -> dict[str, Any]:
        body = await request.json()
        row = {
            "id": str(uuid.uuid4()),
            "project_id": current_context().project_id or "-",
            "name": str(body.get("network", {}).get("name", "")),
        }
        async with runtime.sessions.begin() as session:
            await session.execute(insert(Network).values(**row))
        return {"network": row}

    return make_app(
        settings,
        runtime,
        title="bench target",
        version="2.0",
        routers=[router],
        fault_formatter=neutron_fault,
    )


async def create_tables(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(chassis_metadata.create_all)
    await engine.dispose()


if __name__ == "__main__":
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    settings = TargetSettings(port=port, data_dir=data_dir, log_level="WARNING")
    asyncio.run(create_tables(settings.database_url))
    run_app(create_app(settings), settings)
