"""Connections to RabbitMQ: one robust connection per broker URL, chosen by topic.

An operator may give each service its own broker: ``topic_urls={"volume": URL}`` makes the
``volume`` and ``volume.<host>`` RPC topics meet on that broker, while everything else
(and the event exchange unless ``events_url`` is set) stays on ``url``.

    >>> cfg = MessagingConfig(url="amqp://a/", topic_urls={"volume": "amqp://v/"})
    >>> cfg.url_for_topic("volume.host1"), cfg.url_for_topic("compute")
    ('amqp://v/', 'amqp://a/')
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from pydantic import BaseModel, Field
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "the broker or our channel to it is gone for now"; worth a retry.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ChannelClosed,
    RuntimeError,  # aiormq raises it for writes on a closing connection
)


class MessagingConfig(BaseModel):
    """Where the brokers are and how queues behave; part of every service's settings."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    topic_urls: dict[str, str] = Field(default_factory=dict)
    events_url: str | None = None
    heartbeat_s: int = 10
    connect_timeout_s: float = 60.0
    rpc_queue_type: Literal["classic", "quorum"] = "classic"
    rpc_prefetch: int = 64
    event_prefetch: int = 64
    event_delivery_limit: int = 5
    rpc_max_attempts: int = 3
    # Seconds a running operation's lease lasts without renewal (renewed every third of
    # it): how long a redelivered copy waits before it takes over from a dead worker.
    rpc_operation_lease_s: float = 10.0

    def url_for_topic(self, topic: str) -> str:
        return self.topic_urls.get(topic.split(".", 1)[0], self.url)

    def url_for_events(self) -> str:
        return self.events_url or self.url


def _with_heartbeat(url: str, heartbeat_s: int) -> str:
    if "heartbeat=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}heartbeat={heartbeat_s}"


class Broker:
    """Lazily opened robust connections keyed by URL, shared by every client in a process."""

    def __init__(self, config: MessagingConfig | None = None, *, name: str = "stackling") -> None:
        self.config = config or MessagingConfig()
        self.name = name
        self._connections: dict[str, AbstractRobustConnection] = {}
        self._lock = asyncio.Lock()

    async def connection(self, url: str) -> AbstractRobustConnection:
        """The connection to ``url``; the first one retries with backoff until it answers."""
        conn = self._connections.get(url)
        if conn is not None:
            return conn
        async with self._lock:
            conn = self._connections.get(url)
            if conn is None:
                conn = await self._connect(url)
                self._connections[url] = conn
        return conn

    async def _connect(self, url: str) -> AbstractRobustConnection:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((*TRANSIENT_ERRORS, OSError, asyncio.TimeoutError)),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(self.config.connect_timeout_s),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.warning("broker not reachable yet, retrying", extra={"broker": url})
                return await aio_pika.connect_robust(
                    _with_heartbeat(url, self.config.heartbeat_s),
                    timeout=10,
                    client_properties={"connection_name": self.name},
                )
        raise AssertionError("unreachable")

    async def channel(
        self, url: str, *, confirms: bool = False, prefetch: int = 0
    ) -> AbstractRobustChannel:
        conn = await self.connection(url)
        channel = await conn.channel(publisher_confirms=confirms)
        if prefetch:
            await channel.set_qos(prefetch_count=prefetch)
        return channel  # type: ignore[return-value]

    def is_connected(self) -> bool:
        """True when every opened connection is up (``/readyz`` reads this)."""
        return bool(self._connections) and all(
            not c.is_closed and c.connected.is_set() for c in self._connections.values()
        )

    async def close(self) -> None:
        conns, self._connections = list(self._connections.values()), {}
        for conn in conns:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except (TimeoutError, *TRANSIENT_ERRORS):
                log.debug("broker connection closed uncleanly", exc_info=True)


async def retry_transient(operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``operation`` again after each transient broker failure, with a short backoff.

    It never gives up by itself: callers bound it with ``asyncio.timeout`` and turn the
    timeout into ``RpcTimeout``. That is how a call made during a short broker outage
    either goes through once the broker is back or fails at its deadline, never hangs.
    """
    delay = 0.05
    while True:
        try:
            return await operation()
        except TRANSIENT_ERRORS:
            log.debug("%s: transient broker error, retrying", what, exc_info=True)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def cancel_consumer(queue: Any, consumer_tag: str | None, timeout: float = 5.0) -> None:
    """Stop a consumer within ``timeout``; a broker that is already gone is no error here."""
    if queue is None or consumer_tag is None:
        return
    with contextlib.suppress(TimeoutError, *TRANSIENT_ERRORS):
        await asyncio.wait_for(queue.cancel(consumer_tag), timeout)


async def close_channel(channel: Any, timeout: float = 5.0) -> None:
    """Close a channel within ``timeout``; a broker that is already gone is no error here."""
    if channel is None:
        return
    with contextlib.suppress(TimeoutError, *TRANSIENT_ERRORS):
        await asyncio.wait_for(channel.close(), timeout)
