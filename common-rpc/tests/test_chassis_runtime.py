"""ServiceRuntime end to end on real RabbitMQ: RPC, outbox to subscriber, outage and recovery."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from alembic.util import CommandError
from chassis_fixtures import *  # noqa: F403 (pytest finds fixtures by module name)
from chassis_fixtures import WidgetSettings
from sqlalchemy import text

from common_rpc import Broker, Event, MessagingConfig, RpcRouter, add_event
from common_rpc.chassis.app import make_app
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.contracts.payloads import PortPayload
from common_rpc.events import dead_letter_queue, group_queue
from common_rpc.outbox import outbox
from common_rpc.rpc import queue_name
from common_rpc.testing import RabbitNode, wait_for

EVENT = "network.port.update.end"


@dataclass
class Deps:
    runtime: ServiceRuntime


rpc = RpcRouter()


@rpc.handler()
async def add_widget(deps: Deps, name: str, project_id: str) -> dict:
    async with deps.runtime.sessions.begin() as session:
        await session.execute(
            text("INSERT INTO widgets (id, name) VALUES (:id, :name)"),
            {"id": str(uuid.uuid4()), "name": name},
        )
        payload = PortPayload(id=name, project_id=project_id, network_id="n1", status="ACTIVE")
        await add_event(session, EVENT, payload, project_id=project_id)
    assert deps.runtime.relay is not None
    deps.runtime.relay.wake()
    return {"name": name}


async def delete_queues(url: str, *names: str) -> None:
    broker = Broker(MessagingConfig(url=url), name="chassis-test-cleanup")
    try:
        channel = await broker.channel(url)
        for name in names:
            await channel.queue_delete(name)
    finally:
        await broker.close()


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"chassis{suffix}", f"chassis{suffix}"


@pytest.fixture
async def cleanup_queues(names: tuple[str, str]) -> AsyncIterator[None]:
    yield
    topic, group = names
    await delete_queues(
        MessagingConfig().url, queue_name(topic), group_queue(group), dead_letter_queue(group)
    )


async def test_rpc_outbox_and_subscriber(
    tmp_path: Path,
    any_db_url: str,
    widget_migrations: Path,
    names: tuple[str, str],
    cleanup_queues: None,
) -> None:
    topic, group = names
    project = f"p-{uuid.uuid4().hex[:8]}"
    runtime = ServiceRuntime(
        WidgetSettings(data_dir=tmp_path, db_url=any_db_url), migrations=widget_migrations
    )
    received: list[Event] = []

    async def on_port(event: Event) -> None:
        if event.project_id == project:
            received.append(event)

    runtime.serve(topic, Deps(runtime), rpc)
    runtime.subscribe(group, [EVENT], on_port)
    await runtime.start()
    try:
        reply = await runtime.rpc.call(
            topic, "add_widget", name="w1", project_id=project, op_id="op-1", timeout=10
        )
        assert reply == {"name": "w1"}

        async def got_event() -> bool:
            return len(received) == 1

        await wait_for(got_event, timeout=15)
        assert received[0].payload["id"] == "w1"

        # A retried operation runs once: same reply, no second row, no second event.
        again = await runtime.rpc.call(
            topic, "add_widget", name="w1", project_id=project, op_id="op-1", timeout=10
        )
        assert again == reply
        async with runtime.sessions() as session:
            count = (await session.execute(text("SELECT count(*) FROM widgets"))).scalar()
            assert count == 1
            assert (await session.execute(text("SELECT count(*) FROM outbox"))).scalar() == 0
        assert len(received) == 1
    finally:
        await runtime.stop()
    assert not runtime.broker.is_connected()


async def test_stop_flushes_the_outbox(tmp_path: Path, widget_migrations: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    runtime = ServiceRuntime(
        WidgetSettings(data_dir=tmp_path, db_url=url), migrations=widget_migrations
    )
    await runtime.start()
    assert runtime.relay is not None
    await runtime.relay.stop()  # nobody relays while the event is written
    payload = PortPayload(id="x", project_id="p-flush", network_id="n1", status="DOWN")
    async with runtime.sessions.begin() as session:
        await add_event(session, EVENT, payload, project_id="p-flush")
    await runtime.stop()
    check = ServiceRuntime(WidgetSettings(data_dir=tmp_path, db_url=url))
    async with check.sessions() as session:
        assert (await session.execute(outbox.select())).all() == []
    await check.stop()


async def test_start_failure_cleans_up(tmp_path: Path) -> None:
    settings = WidgetSettings(data_dir=tmp_path, db_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    runtime = ServiceRuntime(settings, migrations=tmp_path / "no-such-migrations")
    with pytest.raises(CommandError):
        await runtime.start()
    assert not runtime.started and not runtime.broker.is_connected()


async def test_runtime_without_database(
    tmp_path: Path, names: tuple[str, str], cleanup_queues: None
) -> None:
    topic, _ = names
    runtime = ServiceRuntime(WidgetSettings(data_dir=tmp_path), database=False)
    server = runtime.serve(topic, Deps(runtime), rpc)
    assert server.oplog is None and not runtime.has_database
    with pytest.raises(RuntimeError):
        runtime.sessions  # noqa: B018
    await runtime.start()
    app = make_app(runtime.settings, runtime, title="agent", version="1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        r = await c.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"broker": "ok"}
    await runtime.stop()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".db")]


async def test_readyz_follows_the_broker(
    tmp_path: Path,
    rabbit_node: RabbitNode,
    widget_migrations: Path,
) -> None:
    settings = WidgetSettings(
        data_dir=tmp_path, db_url=f"sqlite+aiosqlite:///{tmp_path}/w.db", amqp_url=rabbit_node.url
    )
    runtime = ServiceRuntime(settings, migrations=widget_migrations)
    await runtime.start()
    app = make_app(settings, runtime, title="widgets", version="1")

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://w"
        ) as c:

            async def status() -> int:
                return (await c.get("/readyz")).status_code

            assert await status() == 200
            rabbit_node.stop_app()
            try:
                await wait_for(lambda: _is(status, 503), timeout=30)
                body = (await c.get("/readyz")).json()
                assert body["checks"] == {"database": "ok", "broker": "unavailable"}
            finally:
                rabbit_node.start_app()
            # Green again by itself: the robust connection comes back without anyone's help.
            await wait_for(lambda: _is(status, 200), timeout=60, interval=0.5)
    finally:
        await runtime.stop()


async def _is(probe, expected: int) -> bool:
    return await probe() == expected
