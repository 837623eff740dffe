"""RPC when things break: a broker restart, a replica SIGKILLed mid-handler, duplicate
deliveries of one operation, and a request that keeps killing its workers."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common_rpc import (
    Broker,
    InternalError,
    MessagingConfig,
    RpcClient,
    RpcRouter,
    RpcServer,
    RpcTimeout,
    SqlOperationLog,
)
from common_rpc.testing import RabbitNode, wait_for

REPLICA = Path(__file__).with_name("replica_main.py")

router = RpcRouter()


class Counter:
    def __init__(self) -> None:
        self.runs = 0


@router.handler()
async def create_thing(deps: Counter, name: str, seconds: float = 0.0) -> dict:
    deps.runs += 1
    run = deps.runs
    await asyncio.sleep(seconds)
    return {"name": name, "run": run}


class Replicas:
    """Server replicas as separate processes that a test can kill."""

    def __init__(self, url: str, topic: str, tmp: Path) -> None:
        self.url, self.topic, self.db, self.markers = url, topic, tmp / "ops.db", tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        (self.markers / f"{name}.ready").unlink(missing_ok=True)
        proc = subprocess.Popen(
            [
                sys.executable,
                str(REPLICA),
                self.url,
                self.topic,
                str(self.db),
                name,
                str(self.markers),
            ]
        )
        self.procs[name] = proc
        deadline = time.monotonic() + 30
        while not (self.markers / f"{name}.ready").exists():
            assert proc.poll() is None, f"replica {name} exited early"
            assert time.monotonic() < deadline, f"replica {name} did not start"
            time.sleep(0.05)
        return proc

    def effects(self, item: str) -> list[str]:
        with sqlite3.connect(self.db) as conn:
            return [
                w for (w,) in conn.execute("SELECT worker FROM effects WHERE item = ?", (item,))
            ]

    def attempts(self, op_id: str) -> int:
        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT attempts FROM rpc_operations WHERE op_id = ?", (op_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def replicas(rabbit_node: RabbitNode, tmp_path: Path, uid: str):
    r = Replicas(rabbit_node.url, f"work{uid}", tmp_path)
    yield r
    r.stop_all()


async def _wait_file(path: Path, timeout: float = 20.0) -> None:
    async def exists() -> bool:
        return path.exists()  # noqa: ASYNC240 (a local stat in a test poll)

    await wait_for(exists, timeout=timeout)


async def test_replica_killed_mid_handler_hands_the_call_to_another(
    node_broker: Broker, replicas: Replicas, tmp_path: Path
) -> None:
    replicas.start("A")
    call = asyncio.create_task(
        RpcClient(node_broker).call(
            replicas.topic, "work", item="i1", seconds=2.0, op_id="op-1", timeout=60
        )
    )
    await _wait_file(tmp_path / "A.started")
    replicas.start("B")
    os.kill(replicas.procs["A"].pid, signal.SIGKILL)
    reply = await call
    assert reply == {"item": "i1", "worker": "B"}
    assert replicas.effects("i1") == ["B"]  # completed once, on the other replica
    assert replicas.attempts("op-1") == 2


async def test_request_that_keeps_killing_workers_is_dead_lettered(
    node_broker: Broker, replicas: Replicas, tmp_path: Path
) -> None:
    call = asyncio.create_task(
        RpcClient(node_broker).call(
            replicas.topic, "die", item="poison", op_id="op-poison", timeout=90
        )
    )
    for attempt in range(1, 4):
        (tmp_path / "W.died").unlink(missing_ok=True)
        proc = replicas.start("W")
        await _wait_file(tmp_path / "W.died")
        await asyncio.to_thread(proc.wait, 20)
        assert replicas.attempts("op-poison") == attempt
    replicas.start("W")  # the fourth delivery is recognised and dead-lettered
    with pytest.raises(InternalError, match="abandoned"):
        await call
    assert not call.cancelled()
    channel = await node_broker.channel(node_broker.config.url)
    dead = await channel.get_queue("rpc.dead")
    message = await dead.get(no_ack=True, fail=True, timeout=5)
    assert b"poison" in message.body
    assert message.headers["x-topic"] == replicas.topic
    await channel.close()


async def test_retried_operation_runs_once(broker: Broker, sessions, uid: str) -> None:
    counter = Counter()
    server = RpcServer(broker, f"ops{uid}", counter, oplog=SqlOperationLog(sessions))
    server.include(router)
    await server.start()
    client = RpcClient(broker)
    first = await client.call(f"ops{uid}", "create_thing", name="n", op_id=f"op-{uid}", timeout=5)
    again = await client.call(f"ops{uid}", "create_thing", name="n", op_id=f"op-{uid}", timeout=5)
    other = await client.call(f"ops{uid}", "create_thing", name="n", op_id=f"op2-{uid}", timeout=5)
    assert first == again == {"name": "n", "run": 1}
    assert other == {"name": "n", "run": 2}
    assert counter.runs == 2
    assert await SqlOperationLog(sessions).attempts(f"op-{uid}") == 1
    await server.stop()
    channel = await broker.channel(broker.config.url)
    await channel.queue_delete(f"rpc.ops{uid}")
    await channel.close()


async def test_a_retry_while_the_first_runs_waits_for_its_reply(
    broker: Broker, sessions, uid: str
) -> None:
    """A caller's retry (a second message, same op id) arrives while the first delivery
    still runs: it gets the first one's reply, and the operation ran once."""
    counter = Counter()
    oplog = SqlOperationLog(sessions, lease_s=5)
    server = RpcServer(broker, f"ops{uid}", counter, oplog=oplog)
    server.include(router)
    await server.start()
    client = RpcClient(broker)
    try:
        call = f"ops{uid}", "create_thing"
        first = asyncio.create_task(
            client.call(*call, name="n", seconds=1.5, op_id=f"op-{uid}", timeout=10)
        )
        await asyncio.sleep(0.5)  # the first is running (its lease is fresh)
        again = await client.call(*call, name="n", seconds=0, op_id=f"op-{uid}", timeout=10)
        assert again == await first == {"name": "n", "run": 1}
        assert counter.runs == 1
        assert await oplog.attempts(f"op-{uid}") == 1
    finally:
        await server.stop()
        channel = await broker.channel(broker.config.url)
        await channel.queue_delete(f"rpc.ops{uid}")
        await channel.close()


async def test_a_request_its_caller_gave_up_on_is_not_run(
    node_broker: Broker, replicas: Replicas
) -> None:
    """A request that reached a frozen server (in its socket: past the broker's own
    expiry) and is read only after its caller's deadline is dropped, not run for nobody."""
    proc = replicas.start("A")
    client = RpcClient(node_broker)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(RpcTimeout):
            await client.call(
                replicas.topic, "work", item="late", seconds=0, op_id="op-late", timeout=1.0
            )
        await asyncio.sleep(1.3)  # past the deadline and its grace
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    fresh = await client.call(
        replicas.topic, "work", item="fresh", seconds=0, op_id="op-fresh", timeout=10
    )
    assert fresh == {"item": "fresh", "worker": "A"}
    assert replicas.effects("late") == []  # read after "fresh"'s turn came: never run
    assert replicas.attempts("op-late") == 0


async def test_a_call_in_flight_across_a_broker_restart_gets_its_reply(
    rabbit_node: RabbitNode, sessions, uid: str
) -> None:
    """The broker restarts while a mutating call runs: its reply-to died with the old
    channel, so the client sends the request again on the new one, and the caller gets
    a reply within its deadline instead of a timeout. (The lost connection also ends the
    first delivery's handler; the copy takes the operation over once its lease lapsed.)
    Whatever ran, the operation has one outcome: a retry gets the same reply."""
    config = MessagingConfig(url=rabbit_node.url, heartbeat_s=2)
    server_broker, client_broker = Broker(config, name="srv"), Broker(config, name="cli")
    counter = Counter()
    server = RpcServer(server_broker, f"rf{uid}", counter, oplog=SqlOperationLog(sessions))
    server.include(router)
    await server.start()
    client = RpcClient(client_broker)
    try:
        call = asyncio.create_task(
            client.call(
                f"rf{uid}", "create_thing", name="inflight", seconds=2.0, op_id=f"op-{uid}",
                timeout=60,
            )
        )  # fmt: skip
        await asyncio.sleep(0.5)  # the handler runs
        await asyncio.to_thread(rabbit_node.stop_app)
        await asyncio.to_thread(rabbit_node.start_app)
        reply = await call
        assert reply["name"] == "inflight"
        again = await client.call(
            f"rf{uid}", "create_thing", name="inflight", op_id=f"op-{uid}", timeout=10
        )
        assert again == reply and counter.runs == reply["run"]
    finally:
        await server.stop()
        await server_broker.close()
        await client_broker.close()


async def test_calls_survive_a_broker_restart(rabbit_node: RabbitNode, uid: str) -> None:
    config = MessagingConfig(url=rabbit_node.url, heartbeat_s=2)
    server_broker, client_broker = Broker(config, name="srv"), Broker(config, name="cli")
    server = RpcServer(server_broker, f"rs{uid}", Counter())
    server.include(router)
    await server.start()
    client = RpcClient(client_broker)
    assert (await client.call(f"rs{uid}", "create_thing", name="before", timeout=5))[
        "name"
    ] == "before"

    await asyncio.to_thread(rabbit_node.stop_app)
    try:
        started = time.monotonic()
        with pytest.raises(RpcTimeout):
            await client.call(f"rs{uid}", "create_thing", name="short", timeout=1.0)
        assert time.monotonic() - started < 2.5  # a deadline, not a hang

        during = asyncio.create_task(
            client.call(f"rs{uid}", "create_thing", name="during", timeout=30)
        )
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(rabbit_node.start_app)
    assert (await during)["name"] == "during"
    assert (await client.call(f"rs{uid}", "create_thing", name="after", timeout=10))[
        "name"
    ] == "after"
    await server.stop()
    await server_broker.close()
    await client_broker.close()
