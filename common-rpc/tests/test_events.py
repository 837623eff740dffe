"""Events on a RabbitMQ node of the tests' own: fan-out to groups, competing replicas,
dedupe, dead-lettering, contracts, and the outbox across a broker outage."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from common_rpc import (
    Broker,
    Event,
    EventPublisher,
    EventSubscriber,
    MessagingConfig,
    OutboxRelay,
    SqlEventLog,
    add_event,
    make_event,
)
from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.contracts import all_contracts, matches
from common_rpc.contracts.payloads import PortPayload
from common_rpc.events import dead_letter_queue, group_queue
from common_rpc.outbox import outbox
from common_rpc.tables import chassis_metadata
from common_rpc.testing import RabbitNode, wait_for


def port_payload(project: str, status: str = "ACTIVE") -> PortPayload:
    return PortPayload(id=str(uuid.uuid4()), project_id=project, network_id="n1", status=status)


class Inbox:
    """Collects the events a subscriber handed to its handler."""

    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[Event] = []
        self.fail_times = fail_times
        self.calls = 0

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise RuntimeError("handler not ready yet")
        self.events.append(event)


@pytest.fixture
async def groups(node_broker: Broker):
    """Names of consumer groups created by a test; their queues are deleted afterwards."""
    created: list[str] = []
    yield created
    channel = await node_broker.channel(node_broker.config.url)
    for group in created:
        await channel.queue_delete(group_queue(group))
        await channel.queue_delete(dead_letter_queue(group))
    await channel.close()


async def _subscribe(broker: Broker, groups: list[str], group: str, patterns, handler, **kw):
    groups.append(group)
    sub = EventSubscriber(broker, group, patterns, handler, **kw)
    await sub.start()
    return sub


async def test_every_group_gets_each_event_and_replicas_compete(
    node_broker: Broker, rabbit_node: RabbitNode, groups: list[str], uid: str
) -> None:
    project = f"p{uid}"
    compute, volume = Inbox(), Inbox()
    other_broker = Broker(MessagingConfig(url=rabbit_node.url), name="replica2")
    compute2 = Inbox()
    subs = [
        await _subscribe(node_broker, groups, f"compute{uid}", ["network.port.*.end"], compute),
        await _subscribe(other_broker, groups, f"compute{uid}", ["network.port.*.end"], compute2),
        await _subscribe(node_broker, groups, f"volume{uid}", ["network.#"], volume),
    ]
    publisher = EventPublisher(node_broker)
    sent = [make_event("network.port.update.end", port_payload(project)) for _ in range(40)]
    await publisher.publish_many([(e.event_type, e.id, e.to_bytes()) for e in sent])

    async def all_in() -> bool:
        return len(compute.events) + len(compute2.events) == 40 and len(volume.events) == 40

    await wait_for(all_in, timeout=10)
    ids = {e.id for e in sent}
    assert {e.id for e in compute.events + compute2.events} == ids  # each once in the group
    assert compute.events and compute2.events  # both replicas took a share
    assert [e.id for e in volume.events] == [e.id for e in sent]  # in order
    assert volume.events[0].project_id == project
    for sub in subs:
        await sub.stop()
    await other_broker.close()


async def test_duplicate_delivery_changes_nothing(
    node_broker: Broker, groups: list[str], sessions, uid: str
) -> None:
    inbox = Inbox()
    sub = await _subscribe(
        node_broker,
        groups,
        f"dedupe{uid}",
        ["network.port.create.end"],
        inbox,
        dedupe=SqlEventLog(sessions, f"dedupe{uid}"),
    )
    event = make_event("network.port.create.end", port_payload("p"))
    publisher = EventPublisher(node_broker)
    for _ in range(3):
        await publisher.publish(event)
    marker = make_event("network.port.create.end", port_payload("p"))
    await publisher.publish(marker)

    async def marker_in() -> bool:
        return any(e.id == marker.id for e in inbox.events)

    await wait_for(marker_in, timeout=10)
    assert [e.id for e in inbox.events] == [event.id, marker.id]
    assert await SqlEventLog(sessions, f"dedupe{uid}").seen(event.id)
    await sub.stop()


async def test_failing_handler_is_retried_then_dead_lettered(
    node_broker: Broker, groups: list[str], uid: str
) -> None:
    flaky, broken = Inbox(fail_times=2), Inbox(fail_times=10_000)
    subs = [
        await _subscribe(node_broker, groups, f"flaky{uid}", ["volume.volume.create.end"], flaky),
        await _subscribe(node_broker, groups, f"broken{uid}", ["volume.volume.create.end"], broken),
    ]
    event = make_event(
        "volume.volume.create.end",
        {"id": "v1", "project_id": "p", "status": "available", "size": 1},
    )
    await EventPublisher(node_broker).publish(event)

    async def flaky_done() -> bool:
        return len(flaky.events) == 1

    await wait_for(flaky_done, timeout=10)

    async def dead() -> int:
        return await subs[1].dead_letter_depth()

    assert await wait_for(dead, timeout=15) == 1
    assert broken.calls == node_broker.config.event_delivery_limit + 1
    assert await subs[0].dead_letter_depth() == 0
    for sub in subs:
        await sub.stop()


async def test_payload_breaking_its_contract_goes_to_dead_letters(
    node_broker: Broker, groups: list[str], uid: str
) -> None:
    inbox = Inbox()
    sub = await _subscribe(node_broker, groups, f"strict{uid}", ["network.port.delete.end"], inbox)
    bad = Event(event_type="network.port.delete.end", payload={"id": "x"})  # fields missing
    await EventPublisher(node_broker).publish(bad)

    async def dead() -> int:
        return await sub.dead_letter_depth()

    assert await wait_for(dead, timeout=10) == 1
    assert inbox.calls == 0
    await sub.stop()


def test_contracts_are_versioned_and_named_by_the_routing_scheme() -> None:
    contracts = all_contracts()
    assert len(contracts) > 10
    for contract in contracts:
        parts = contract.event_type.split(".")
        assert parts[0] in {"compute", "network", "volume"} and 3 <= len(parts) <= 4
        assert contract.version.count(".") == 1
    assert matches("network.port.*.end", "network.port.update.end")
    assert not matches("network.port.*.end", "network.port.update.start")
    assert matches("network.#", "network.port.update.end")
    with pytest.raises(KeyError):
        make_event("network.nothing.happened", {})


async def test_outbox_loses_nothing_across_a_broker_outage(
    rabbit_node: RabbitNode, sessions, groups: list[str], uid: str
) -> None:
    broker = Broker(MessagingConfig(url=rabbit_node.url, heartbeat_s=2), name="outbox")
    inbox = Inbox()
    sub = await _subscribe(broker, groups, f"outbox{uid}", ["network.port.*.end"], inbox)
    relay = OutboxRelay(sessions, EventPublisher(broker), poll_interval=0.1, publish_timeout=2)
    relay.start()
    written: list[str] = []

    async def produce(n: int) -> None:
        for _ in range(n):
            async with sessions.begin() as session:
                event = await add_event(session, "network.port.create.end", port_payload(uid))
            written.append(event.id)
        relay.wake()

    await produce(20)
    await asyncio.to_thread(rabbit_node.stop_app)
    try:
        await produce(30)  # committed while the broker is down
        await asyncio.sleep(1.0)
        assert await relay.pending() > 0  # nothing was dropped to make room
    finally:
        await asyncio.to_thread(rabbit_node.start_app)
    await produce(10)

    async def all_delivered() -> bool:
        return {e.id for e in inbox.events} >= set(written)

    await wait_for(all_delivered, timeout=60)
    assert len(written) == 60
    assert {e.id for e in inbox.events} == set(written)  # zero lost, nothing foreign

    async def drained() -> bool:
        return await relay.pending() == 0

    await wait_for(drained, timeout=10)
    await relay.stop()
    await sub.stop()
    await broker.close()


async def test_outbox_rolls_back_with_the_transaction(sessions) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await add_event(session, "network.port.create.end", port_payload("p"))
            raise RuntimeError("the change failed")
    async with sessions() as session:
        rows = (await session.execute(outbox.select())).all()
    assert rows == []


async def test_dead_letter_depth_is_exported(
    node_broker: Broker, groups: list[str], uid: str
) -> None:
    from prometheus_client import REGISTRY

    sub = await _subscribe(
        node_broker, groups, f"metric{uid}", ["network.port.delete.end"], Inbox()
    )
    await EventPublisher(node_broker).publish(
        Event(event_type="network.port.delete.end", payload={"broken": True})
    )

    async def exported() -> float:
        await sub.dead_letter_depth()
        value = REGISTRY.get_sample_value(
            "stackling_dead_letter_messages", {"queue": dead_letter_queue(f"metric{uid}")}
        )
        return value or 0.0

    assert await wait_for(exported, timeout=10) == 1.0
    await sub.stop()


class FakePublisher:
    """Records what it would publish, after a confirm-like pause (pure relay logic)."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    async def publish_many(self, events: list[tuple[str, str, bytes]]) -> None:
        await asyncio.sleep(random.uniform(0.001, 0.02))
        self.seen.extend(event_id for _type, event_id, _body in events)


async def test_two_relays_on_one_sqlite_outbox_lose_nothing(tmp_path) -> None:
    """Two replicas' relays drain one SQLite outbox while events keep coming: SQLite reuses
    a seq once the table empties, so a relay deleting by seq could drop a newer row."""
    url = f"sqlite+aiosqlite:///{tmp_path}/svc.db"
    engines = [make_engine(url), make_engine(url)]
    try:
        async with engines[0].begin() as conn:
            await conn.run_sync(chassis_metadata.create_all)
        seen: list[str] = []
        relays = [
            OutboxRelay(make_sessionmaker(e), FakePublisher(seen), poll_interval=0.005)
            for e in engines
        ]
        for relay in relays:
            relay.start()
        writer = make_sessionmaker(engines[0])
        made = []
        for _ in range(300):
            async with writer.begin() as session:
                event = await add_event(session, "network.port.create.end", port_payload("r"))
                made.append(event.id)
            await asyncio.sleep(random.uniform(0, 0.01))

        async def drained() -> bool:
            return set(made) <= set(seen)

        await wait_for(drained, timeout=20)
        for relay in relays:
            await relay.stop()
        assert set(seen) == set(made)
    finally:
        for engine in engines:
            await engine.dispose()
