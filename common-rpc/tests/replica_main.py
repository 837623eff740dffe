"""A server replica run as its own process, so a test can SIGKILL it mid-handler.

Usage: python replica_main.py AMQP_URL TOPIC SQLITE_PATH NAME MARKER_DIR
The ``work`` handler records its start in MARKER_DIR, waits ``seconds``, then records the
effect in the database; ``die`` kills its own process, as a poisonous request would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from common_rpc import Broker, MessagingConfig, RpcRouter, RpcServer, SqlOperationLog
from common_rpc.tables import chassis_metadata

router = RpcRouter()
LEASE_S = 1.5


class Deps:
    def __init__(self, name: str, sessions: async_sessionmaker, markers: Path) -> None:
        self.name, self.sessions, self.markers = name, sessions, markers


@router.handler()
async def work(deps: Deps, item: str, seconds: float) -> dict:
    (deps.markers / f"{deps.name}.started").write_text(item)
    await asyncio.sleep(seconds)
    async with deps.sessions.begin() as session:
        await session.execute(
            text("INSERT INTO effects (item, worker) VALUES (:i, :w)"), {"i": item, "w": deps.name}
        )
    return {"item": item, "worker": deps.name}


@router.handler()
async def die(deps: Deps, item: str) -> None:
    (deps.markers / f"{deps.name}.died").write_text(item)
    os.kill(os.getpid(), signal.SIGKILL)


async def main(url: str, topic: str, db: str, name: str, markers: str) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}", connect_args={"timeout": 30})
    async with engine.begin() as conn:
        await conn.run_sync(chassis_metadata.create_all)
        await conn.execute(text("CREATE TABLE IF NOT EXISTS effects (item TEXT, worker TEXT)"))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    broker = Broker(MessagingConfig(url=url, heartbeat_s=2), name=name)
    server = RpcServer(
        broker,
        topic,
        Deps(name, sessions, Path(markers)),
        prefetch=1,
        # A short lease: a killed worker's operation is taken over within seconds.
        oplog=SqlOperationLog(sessions, max_attempts=3, lease_s=LEASE_S),
    )
    server.include(router)
    await server.start()
    (Path(markers) / f"{name}.ready").write_text("ready")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
