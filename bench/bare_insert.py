"""The floor for port create: a bare FastAPI route doing one insert and one select.

Same stack as network-api (uvicorn, FastAPI, SQLAlchemy async, SQLite in WAL mode through
the chassis engine) but no identity check, no IPAM, no events: what a create costs
before any of the service's own work.

    python -m bench.bare_insert PORT DB_FILE_OR_URL
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc.chassis.db import make_engine, make_sessionmaker


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    network_id: Mapped[str] = mapped_column(String(36), index=True)
    ip_address: Mapped[str] = mapped_column(String(64), unique=True)


def create_app(url: str) -> FastAPI:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    app = FastAPI()

    @app.post("/items", status_code=201)
    async def create(body: dict[str, Any]) -> dict[str, Any]:
        item = Item(
            id=str(uuid.uuid4()),
            network_id=str(body.get("network_id", "")),
            ip_address=f"10.{random.randrange(256)}.{random.randrange(256)}.{uuid.uuid4().hex[:6]}",
        )
        async with sessions.begin() as session:
            session.add(item)
        async with sessions() as session:
            row = await session.scalar(select(Item).where(Item.id == item.id))
        assert row is not None
        return {"item": {"id": row.id, "ip_address": row.ip_address}}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, engine


async def _create_tables(engine: Any) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()  # its connections belong to this loop, not uvicorn's


if __name__ == "__main__":
    port, db = int(sys.argv[1]), sys.argv[2]
    app, engine = create_app(db if "://" in db else f"sqlite+aiosqlite:///{db}")
    asyncio.run(_create_tables(engine))
    gc.freeze()  # as the services' run_app does: the floor gets the same process tuning
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
