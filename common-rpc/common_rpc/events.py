"""Published events: one durable topic exchange, confirmed publishing, durable subscribers.

Routing keys are ``<service>.<resource>.<action>[.<phase>]``. Each consuming service
(``group``) owns one durable quorum queue bound to the patterns it cares about; replicas
of that service compete on it. A delivery is acked after the handler succeeded; a
failing one is retried up to the delivery limit and then lands in the group's
dead-letter queue. Duplicates are normal in at-least-once delivery, so deliveries are
deduplicated by event id.

    subscriber = EventSubscriber(broker, "compute", ["network.port.*.end"], on_port,
                                 dedupe=SqlEventLog(sessions, "compute"))
    await subscriber.start()
    await EventPublisher(broker).publish(make_event("network.port.update.end", payload))

Producers should not publish directly: ``outbox.add_event`` writes the event in the same
database transaction as the change, and the relay publishes it (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from pamqp.commands import Basic
from pydantic import BaseModel, Field, ValidationError

from .broker import TRANSIENT_ERRORS, Broker, cancel_consumer, close_channel
from .context import RequestContext, current_context, reset_context, set_context
from .metrics import DEAD_LETTER_DEPTH, EVENTS_CONSUMED, EVENTS_PUBLISHED, cached_labels

log = logging.getLogger(__name__)

EXCHANGE = "stackling.events"
DEAD_LETTER_EXCHANGE = "stackling.events.dead"


class Event(BaseModel):
    """The envelope every event travels in; ``payload`` follows the type's contract."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    event_type: str
    version: str = "1.0"
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    project_id: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    def typed_payload(self) -> BaseModel:
        """The payload validated against its contract (raises ``ValidationError``)."""
        from .contracts import validate_payload

        return validate_payload(self.event_type, self.payload)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, data: bytes) -> Event:
        return cls.model_validate(orjson.loads(data))


def make_event(
    event_type: str,
    payload: BaseModel | dict[str, Any],
    *,
    project_id: str | None = None,
    ctx: RequestContext | None = None,
) -> Event:
    """Build an event for the current request, checked against its contract."""
    from .contracts import contract_for

    ctx = ctx or current_context()
    contract = contract_for(event_type)
    if isinstance(payload, BaseModel):
        data = payload.model_dump(mode="json")
    else:
        data = contract.model.model_validate(payload).model_dump(mode="json")
    if project_id is None:
        # An event belongs to the resource's project, not to whoever (an admin) acted.
        project_id = data.get("project_id") or ctx.project_id
    return Event(
        event_type=event_type,
        version=contract.version,
        project_id=project_id,
        request_id=None if ctx.request_id == "-" else ctx.request_id,
        user_id=ctx.user_id,
        payload=data,
    )


async def declare_exchange(channel: AbstractRobustChannel) -> aio_pika.abc.AbstractExchange:
    return await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)


class EventPublisher:
    """Publishes persistent events with publisher confirms; many confirms may be in flight."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._channel: AbstractRobustChannel | None = None
        self._lock = asyncio.Lock()

    async def _confirm_channel(self) -> aiormq.abc.AbstractChannel:
        """The channel underneath the robust one (a new one after a reconnect)."""
        if self._channel is None:
            async with self._lock:
                if self._channel is None:
                    url = self.broker.config.url_for_events()
                    channel = await self.broker.channel(url, confirms=True)
                    await declare_exchange(channel)
                    self._channel = channel
        return await self._channel.get_underlay_channel()

    async def publish(self, event: Event) -> None:
        await self.publish_many([(event.event_type, event.id, event.to_bytes())])

    async def publish_raw(self, event_type: str, event_id: str, body: bytes) -> None:
        """Publish an already serialised event; returns once the broker confirmed it."""
        await self.publish_many([(event_type, event_id, body)])

    async def publish_many(self, events: Sequence[tuple[str, str, bytes]]) -> None:
        """Publish a batch with every confirm in flight at once; raises if any failed.

        The outbox relay's hot path: AMQP properties go straight to the channel beneath
        aio-pika, and the metric is counted once per event type and batch.
        """
        channel = await self._confirm_channel()
        results = await asyncio.gather(
            *(
                channel.basic_publish(
                    body,
                    exchange=EXCHANGE,
                    routing_key=event_type,
                    properties=Basic.Properties(
                        message_id=event_id,
                        message_type=event_type,
                        content_type="application/json",
                        delivery_mode=2,  # persistent
                    ),
                    mandatory=False,  # an event nobody subscribed to is not an error
                )
                for event_type, event_id, body in events
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
            if not isinstance(result, Basic.Ack):
                raise aio_pika.exceptions.DeliveryError(None, result)
        for event_type, count in Counter(t for t, _, _ in events).items():
            cached_labels(EVENTS_PUBLISHED, event_type).inc(count)


class Deduper(Protocol):
    """Remembers which event ids a consumer group already handled."""

    async def seen(self, event_id: str) -> bool: ...

    async def remember(self, event_id: str) -> None: ...


class MemoryDeduper:
    """Per-process dedupe of recent ids: enough for consumers whose effects are idempotent."""

    def __init__(self, size: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    async def seen(self, event_id: str) -> bool:
        return event_id in self._ids

    async def remember(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


EventHandler = Callable[[Event], Awaitable[None]]


def group_queue(group: str) -> str:
    return f"events.{group}"


def dead_letter_queue(group: str) -> str:
    return f"events.{group}.dead"


class EventSubscriber:
    """One consumer group's durable queue, bound to patterns, feeding one handler."""

    def __init__(
        self,
        broker: Broker,
        group: str,
        patterns: Iterable[str],
        handler: EventHandler,
        *,
        dedupe: Deduper | None = None,
        prefetch: int | None = None,
    ) -> None:
        self.broker = broker
        self.group = group
        self.patterns = list(patterns)
        self.handler = handler
        self.dedupe = dedupe or MemoryDeduper()
        self.prefetch = prefetch or broker.config.event_prefetch
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitor: asyncio.Task[None] | None = None
        self.monitor_interval = 15.0

    async def start(self) -> None:
        """Declare the queues and bindings, then start consuming."""
        await declare_group_queue(self.broker, self.group, self.patterns)
        self._channel = await self.broker.channel(
            self.broker.config.url_for_events(), prefetch=self.prefetch
        )
        queue = await self._channel.declare_queue(group_queue(self.group), passive=True)
        self._queue = queue
        self._consumer_tag = await queue.consume(self._on_message)
        self._monitor = asyncio.create_task(self._watch_dead_letters(), name=f"dlq-{self.group}")

    async def _watch_dead_letters(self) -> None:
        """Keep the dead-letter depth metric current; a growing one needs an operator."""
        while True:
            try:
                await asyncio.wait_for(self.dead_letter_depth(), 10)
            except (TimeoutError, *TRANSIENT_ERRORS):
                pass
            await asyncio.sleep(self.monitor_interval)

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None
        await cancel_consumer(self._queue, self._consumer_tag)
        await close_channel(self._channel)
        self._channel = self._queue = self._consumer_tag = None

    async def dead_letter_depth(self) -> int:
        """Messages waiting in this group's dead-letter queue (also exported as a metric)."""
        assert self._channel is not None
        # The robust channel caches declarations; ask the broker itself for the count.
        channel = await self._channel.get_underlay_channel()
        result = await channel.queue_declare(dead_letter_queue(self.group), passive=True)
        depth = result.message_count or 0
        DEAD_LETTER_DEPTH.labels(dead_letter_queue(self.group)).set(depth)
        return depth

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.from_bytes(message.body)
            event.typed_payload()
        except (orjson.JSONDecodeError, ValidationError, KeyError) as exc:
            log.error("event rejected: does not match its contract: %s", exc)
            EVENTS_CONSUMED.labels(self.group, "invalid").inc()
            await message.reject(requeue=False)  # straight to the dead-letter queue
            return
        token = set_context(
            RequestContext(
                request_id=event.request_id or "-",
                project_id=event.project_id,
                user_id=event.user_id,
            )
        )
        # Duplicates may arrive together: the second waits for the first, then finds it seen.
        lock = self._locks.setdefault(event.id, asyncio.Lock())
        try:
            async with lock:
                await self._handle_once(event, message)
        except TRANSIENT_ERRORS:
            log.warning("lost the broker while handling %s; it will be redelivered", event.id)
        finally:
            if not lock.locked():
                self._locks.pop(event.id, None)
            reset_context(token)

    async def _handle_once(self, event: Event, message: AbstractIncomingMessage) -> None:
        if await self.dedupe.seen(event.id):
            EVENTS_CONSUMED.labels(self.group, "duplicate").inc()
            await message.ack()
            return
        try:
            await self.handler(event)
        except Exception:
            log.exception("event handler failed for %s; will be retried", event.event_type)
            EVENTS_CONSUMED.labels(self.group, "failed").inc()
            await message.nack(requeue=True)
            return
        await self.dedupe.remember(event.id)
        EVENTS_CONSUMED.labels(self.group, "ok").inc()
        await message.ack()


async def declare_group_queue(broker: Broker, group: str, patterns: Iterable[str]) -> AbstractQueue:
    """Declare a group's quorum queue, its dead-letter queue and its bindings.

    Safe to call before any producer runs, which is what makes early events survive:
    RabbitMQ drops a message that no queue is bound for.
    """
    cfg = broker.config
    channel = await broker.channel(cfg.url_for_events())
    try:
        exchange = await declare_exchange(channel)
        dlx = await channel.declare_exchange(
            DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead = await channel.declare_queue(
            dead_letter_queue(group), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(dlx, routing_key=group)
        queue = await channel.declare_queue(
            group_queue(group),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": cfg.event_delivery_limit,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": group,
            },
        )
        for pattern in patterns:
            await queue.bind(exchange, routing_key=pattern)
        return queue
    finally:
        await channel.close()
