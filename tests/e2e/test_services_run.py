"""The four services as real processes under uvicorn, all-in-one on this machine.

Each starts on its own SQLite database (created by migration), answers /healthz and
/readyz, serves its RPC ``ping``; compute calls network and volume over RPC; an event
network writes to its outbox reaches compute's subscriber; SIGTERM stops each cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from stack import SERVICES, Stack

from common_rpc import Broker, RpcClient, add_event
from common_rpc.chassis.identity import generate_keypair
from common_rpc.contracts.payloads import PortPayload


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    generate_keypair(tmp_path / "keys")
    s = Stack(tmp_path)
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_services_start_talk_and_stop(stack: Stack) -> None:
    await asyncio.to_thread(stack.wait_ready)
    async with httpx.AsyncClient(timeout=5) as http:
        for name in SERVICES:
            assert (stack.data_dir / f"{name}.db").exists()
            health = await http.get(f"{stack.url(name)}/healthz")
            assert health.json() == {"status": "ok"}
            assert "X-Openstack-Request-Id" in health.headers

    broker = Broker(name="e2e")
    try:
        rpc = RpcClient(broker, timeout=10)
        for name in SERVICES:
            assert (await rpc.call(name, "ping"))["service"] == name
        peers = await rpc.call("compute", "check_peers")
        assert peers["network"]["ok"] and peers["network"]["service"] == "network"
        assert peers["volume"]["ok"] and peers["volume"]["service"] == "volume"
    finally:
        await broker.close()

    # Network's domain code writes events to its outbox; its relay and compute's
    # subscription carry them across.
    engine = create_async_engine(f"sqlite+aiosqlite:///{stack.data_dir}/network.db")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    port_id = str(uuid.uuid4())
    async with sessions.begin() as session:
        event = await add_event(
            session,
            "network.port.update.end",
            PortPayload(id=port_id, project_id="p1", network_id="n1", status="ACTIVE"),
        )
    await engine.dispose()

    def compute_processed() -> bool:
        with sqlite3.connect(stack.data_dir / "compute.db") as conn:
            rows = conn.execute(
                "SELECT 1 FROM processed_events WHERE consumer = 'compute' AND event_id = ?",
                (event.id,),
            ).fetchall()
        return bool(rows)

    # Relay poll (0.5 s) and consumer are quick; the bound is for a loaded CI machine.
    deadline = time.monotonic() + 60
    while not compute_processed():
        if time.monotonic() > deadline:
            tails = {name: stack.log(name)[-4000:] for name in ("network", "compute")}
            raise AssertionError(f"the event was not consumed within 60 s: {tails}")
        await asyncio.sleep(0.2)

    codes = await asyncio.to_thread(stack.stop)
    for name, code in codes.items():
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
        assert code in (0, -signal.SIGTERM), (name, code)
        assert "Application shutdown complete" in stack.log(name)
