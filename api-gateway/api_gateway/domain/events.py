"""Live events for tenants, fed by the event bus: one consumer per process, fanned out.

    stream = EventStream(runtime.broker)        # one per gateway process (wiring.Deps)
    add_lifespan(app, stream)                   # app.add_lifespan: consume while up
    body = stream.frames(project_id, ("compute.server.*.end",))   # SSE frames for one client

``api/events.py`` serves it as ``GET /v1/events`` (Server-Sent Events):

    id: 6f1c0b9e-...
    event: compute.server.create.end
    data: {"id":"6f1c0b9e-...","event_type":"compute.server.create.end","project_id":...}

Every gateway replica must see every event, so this is no consumer group: each process
binds its own exclusive, auto-deleted queue to ``#`` and fans events out in memory. A
client gets its token's project's events (an admin may ask for all projects), filtered by
``type`` patterns (AMQP topic syntax). Each client has a bounded queue; one that cannot
keep up gets ``event: error`` and is closed rather than slowing the others. A comment line
every ``heartbeat_s`` keeps proxies from closing an idle stream. Delivery is live only
(nothing is replayed after a reconnect); ``id`` lets a client drop the duplicates that
at-least-once publishing may cause.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from pydantic import ValidationError

from common_rpc import Broker, Event, MemoryDeduper
from common_rpc.broker import cancel_consumer, close_channel
from common_rpc.contracts import matches
from common_rpc.events import declare_exchange

log = logging.getLogger(__name__)

# SSE field values end at a newline: an id or type with one could forge frames.
_FIELD = re.compile(r"^[\x21-\x7e]{1,255}$")
_WAKE = b""  # an empty frame: wakes a waiting client to look at ``closed``


@dataclass(eq=False)
class Subscription:
    """One connected client: what it wants and the frames waiting for it."""

    project_id: str
    all_projects: bool
    patterns: tuple[str, ...]
    queue: asyncio.Queue[bytes]
    closed: str | None = None  # why the stream ends, once it must

    def wants(self, event: Event) -> bool:
        if not self.all_projects and event.project_id != self.project_id:
            return False
        return any(matches(pattern, event.event_type) for pattern in self.patterns)


def sse_frame(event: Event) -> bytes:
    """``id``, ``event`` and ``data`` lines; the JSON envelope has no newline in it."""
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        event.id.encode(),
        event.event_type.encode(),
        event.to_bytes(),
    )


def error_frame(code: str, message: str) -> bytes:
    return b"event: error\ndata: %s\n\n" % orjson.dumps({"code": code, "message": message})


class EventStream:
    """The process's one consumer of every event, fanning out to the connected clients."""

    def __init__(
        self,
        broker: Broker,
        *,
        client_queue_size: int = 256,
        heartbeat_s: float = 15.0,
        max_clients: int = 1000,
        backlog: int = 10_000,
    ) -> None:
        self.broker = broker
        self.client_queue_size = client_queue_size
        self.heartbeat_s = heartbeat_s
        self.max_clients = max_clients
        self.backlog = backlog
        self.queue_name = f"gateway.sse.{socket.gethostname()}.{uuid.uuid4().hex[:12]}"
        self._subscriptions: set[Subscription] = set()
        self._dedupe = MemoryDeduper(size=10_000)
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None

    async def start(self, timeout_s: float = 30.0) -> None:
        """Bind this process's queue to every event and start consuming."""
        async with asyncio.timeout(timeout_s):
            channel = await self.broker.channel(self.broker.config.url_for_events())
            self._channel = channel
            exchange = await declare_exchange(channel)
            queue = await channel.declare_queue(
                self.queue_name,
                durable=False,
                exclusive=True,
                auto_delete=True,
                # A stalled consumer keeps the newest events, never an unbounded backlog.
                arguments={"x-max-length": self.backlog, "x-overflow": "drop-head"},
            )
            await queue.bind(exchange, routing_key="#")
            self._queue = queue
            self._consumer_tag = await queue.consume(self._on_message, no_ack=True)

    async def stop(self) -> None:
        for sub in list(self._subscriptions):
            self._close(sub, "The gateway is shutting down.")
        await cancel_consumer(self._queue, self._consumer_tag)
        await close_channel(self._channel)
        self._channel = self._queue = self._consumer_tag = None

    @property
    def client_count(self) -> int:
        return len(self._subscriptions)

    @property
    def full(self) -> bool:
        return len(self._subscriptions) >= self.max_clients

    def subscribe(
        self, project_id: str, patterns: tuple[str, ...], all_projects: bool = False
    ) -> Subscription:
        sub = Subscription(
            project_id, all_projects, patterns, asyncio.Queue(self.client_queue_size)
        )
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if not self._subscriptions:
            return  # nobody listening: not even worth parsing
        try:
            event = Event.from_bytes(message.body)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("event stream: undecodable message skipped: %s", exc)
            return
        if not (_FIELD.match(event.id) and _FIELD.match(event.event_type)):
            log.warning("event stream: event with an unprintable id or type skipped")
            return
        if await self._dedupe.seen(event.id):
            return
        await self._dedupe.remember(event.id)
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """Queue ``event`` for every client that wants it; drop those that cannot keep up."""
        frame: bytes | None = None
        for sub in list(self._subscriptions):
            if not sub.wants(event):
                continue
            frame = frame or sse_frame(event)
            try:
                sub.queue.put_nowait(frame)
            except asyncio.QueueFull:
                log.info("event stream: client of project %s too slow, dropped", sub.project_id)
                self._close(sub, "The client did not keep up with its events.")

    def _close(self, sub: Subscription, reason: str) -> None:
        sub.closed = reason
        self.unsubscribe(sub)
        try:
            sub.queue.put_nowait(_WAKE)
        except asyncio.QueueFull:
            pass  # a full queue means its reader is not waiting: it sees ``closed`` next

    async def frames(
        self,
        project_id: str,
        patterns: tuple[str, ...],
        all_projects: bool = False,
        *,
        still_allowed: Callable[[], Awaitable[bool]] | None = None,
        recheck_s: float = 5.0,
    ) -> AsyncIterator[bytes]:
        """An SSE body: subscribed while it is iterated, so a client that left never lingers.

        ``still_allowed`` is asked every ``recheck_s`` (the token behind the stream still
        valid, for this project): a stream outlives no revocation by more than that, plus
        the validation's own cache. On False it ends with ``event: error``.
        """
        sub = self.subscribe(project_id, patterns, all_projects)
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat_s
        next_check = loop.time() + recheck_s if still_allowed is not None else float("inf")
        try:
            yield b": connected\n\n"
            while True:
                if sub.closed is not None:
                    yield error_frame("stream_closed", sub.closed)
                    return
                now = loop.time()
                if still_allowed is not None and now >= next_check:
                    if not await still_allowed():
                        yield error_frame(
                            "unauthorized", "The token is no longer valid for this stream."
                        )
                        return
                    next_check = loop.time() + recheck_s
                if now >= next_beat:
                    yield b": heartbeat\n\n"
                    next_beat = loop.time() + self.heartbeat_s
                    continue
                try:
                    frame = await asyncio.wait_for(
                        sub.queue.get(), max(0.0, min(next_beat, next_check) - now)
                    )
                except TimeoutError:
                    continue
                if frame:
                    yield frame
                    next_beat = loop.time() + self.heartbeat_s  # a beat only after silence
        finally:
            self.unsubscribe(sub)
