"""One benchmark client process: one system, driven slice by slice over stdin.

Systems:

- ``common``: ``RpcClient(broker).call(topic, "echo", value=...)`` (common-rpc);
- ``raw``: the smallest aio-pika request/reply there is: direct reply-to, JSON bodies,
  correlation ids and a dict of futures;
- ``oslo``: oslo.messaging ``call()`` from a thread pool of the given concurrency;
- ``events-confirmed``: ``EventPublisher.publish_many`` (publisher confirms, a whole batch
  of confirms in flight), the way the outbox relay publishes;
- ``events-concurrent``: ``EventPublisher.publish_raw`` from as many tasks as the batch
  size, so that many confirms are always in flight;
- ``events-unconfirmed``: the same messages on a raw aio-pika channel without confirms.

The asyncio systems run on uvloop, as the services do under uvicorn. The process connects
once, then answers each command on stdin with one JSON line on stdout:

- ``warmup <concurrency> <seconds>``: run, discard the figures;
- ``measure <concurrency> <seconds>``: run after a short settling time and add the calls
  completed inside the window to that concurrency's totals;
- ``report``: per concurrency, over every measured slice: rate, p50 and p99, and this
  process's CPU time per call; then it exits.

``concurrency`` is the number of RPC calls kept in flight (one per worker), the size of
an event batch, or the number of ``publish_raw`` tasks. ``bench.rpc_bench`` interleaves
the slices of all systems, so that a noisy neighbour slows them alike.

    printf 'warmup 64 1\\nmeasure 64 2\\nreport\\n' | python -m bench.client raw --queue q
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

REPLY_TO = "amq.rabbitmq.reply-to"
CALL_TIMEOUT_S = 10.0
SETTLE_S = 0.3  # after starting the workers, before the window opens
ECHO_VALUE = "hello"


@dataclass
class Window:
    """One measured slice: what completed between ``begin()`` and ``end()``."""

    recording: bool = False
    stopping: bool = False
    started: float = 0.0
    ended: float = 0.0
    latencies: list[float] = field(default_factory=list)
    messages: int | None = None  # events: messages published; RPC: None (one per latency)
    done: int = 0  # completed at any time during the slice, settling and draining included
    cpu_s: float = 0.0  # this process's CPU time over the whole slice

    def begin(self) -> None:
        self.started = time.perf_counter()
        self.recording = True

    def end(self) -> None:
        self.ended = time.perf_counter()
        self.recording = False
        self.stopping = True

    @property
    def count(self) -> int:
        return len(self.latencies) if self.messages is None else self.messages

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


@dataclass
class Totals:
    """Every measured slice of one concurrency, summed."""

    count: int = 0
    elapsed: float = 0.0
    done: int = 0
    cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    slice_rates: list[float] = field(default_factory=list)

    def add(self, window: Window) -> None:
        self.count += window.count
        self.elapsed += window.elapsed
        self.done += window.done
        self.cpu_s += window.cpu_s
        self.latencies.extend(window.latencies)
        self.slice_rates.append(round(window.count / window.elapsed, 1))

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "count": self.count,
            "elapsed_s": round(self.elapsed, 3),
            "rate": round(self.count / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": None,
            "p99_ms": None,
            "client_cpu_us": round(self.cpu_s / self.done * 1e6, 1) if self.done else None,
            "slice_rates": self.slice_rates,
        }
        if len(self.latencies) >= 2:
            cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
            result["p50_ms"] = round(cuts[49] * 1000, 3)
            result["p99_ms"] = round(cuts[98] * 1000, 3)
        return result


class Ledger:
    """Parses commands and keeps the totals; shared by the asyncio and threaded loops."""

    def __init__(self) -> None:
        self.totals: dict[int, Totals] = {}

    @staticmethod
    def parse(line: str) -> tuple[str, int, float]:
        words = line.split()
        if words == ["report"]:
            return "report", 0, 0.0
        if len(words) == 3 and words[0] in ("warmup", "measure"):
            return words[0], int(words[1]), float(words[2])
        raise ValueError(f"bad command {line!r}")

    def record(self, command: str, concurrency: int, window: Window) -> str:
        if command == "measure":
            self.totals.setdefault(concurrency, Totals()).add(window)
        rate = window.count / window.elapsed if window.elapsed else 0.0
        return json.dumps(
            {
                "command": command,
                "count": window.count,
                "rate": round(rate, 1),
                "done": window.done,
                "cpu_s": round(window.cpu_s, 4),
            }
        )

    def report(self, **extra: Any) -> str:
        cells = {str(c): t.summary() for c, t in sorted(self.totals.items())}
        return json.dumps({"cells": cells, **extra})


Measure = Callable[[int, float, float], Awaitable[Window]]


async def command_loop(measure: Measure) -> str:
    """Serve commands until ``report``; returns the report line."""
    ledger = Ledger()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            raise SystemExit("stdin closed before report")
        command, concurrency, seconds = ledger.parse(line)
        if command == "report":
            return ledger.report()
        settle = 0.0 if command == "warmup" else SETTLE_S
        cpu = time.process_time()
        window = await measure(concurrency, settle, seconds)
        window.cpu_s = time.process_time() - cpu
        print(ledger.record(command, concurrency, window), flush=True)


def rpc_measure(call: Callable[[], Awaitable[object]]) -> Measure:
    """Slices of ``concurrency`` coroutines calling back to back, each call timed."""

    async def measure(concurrency: int, settle: float, seconds: float) -> Window:
        window = Window()

        async def worker() -> None:
            while not window.stopping:
                started = time.perf_counter()
                await call()
                window.done += 1
                if window.recording:
                    window.latencies.append(time.perf_counter() - started)

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(settle)
        window.begin()
        await asyncio.sleep(seconds)
        window.end()
        await asyncio.gather(*tasks)
        return window

    return measure


async def run_common(args: argparse.Namespace) -> str:
    from common_rpc import Broker, MessagingConfig, RpcClient

    config = MessagingConfig(url=args.url, rpc_queue_type=args.queue_type)
    broker = Broker(config, name="bench-client")
    client = RpcClient(broker, timeout=CALL_TIMEOUT_S)

    async def call() -> None:
        reply = await client.call(args.topic, "echo", value=ECHO_VALUE)
        assert reply == {"echo": ECHO_VALUE}, reply

    await call()
    print("ready", flush=True)
    report = await command_loop(rpc_measure(call))
    await broker.close()
    return report


class RawRpcClient:
    """Request/reply on one aio-pika channel, replies through RabbitMQ's direct reply-to."""

    def __init__(self, channel: Any, routing_key: str) -> None:
        self.channel = channel
        self.routing_key = routing_key
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self._ids = itertools.count()

    async def start(self) -> None:
        replies = await self.channel.declare_queue(REPLY_TO, passive=True)
        await replies.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: Any) -> None:
        future = self.pending.pop(message.correlation_id, None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def call(self, method: str, **args: Any) -> Any:
        import aio_pika

        correlation_id = str(next(self._ids))
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[correlation_id] = future
        try:
            await self.channel.default_exchange.publish(
                aio_pika.Message(
                    orjson.dumps({"m": method, "a": args}),
                    correlation_id=correlation_id,
                    reply_to=REPLY_TO,
                ),
                routing_key=self.routing_key,
                mandatory=False,
            )
            async with asyncio.timeout(CALL_TIMEOUT_S):
                body = await future
        finally:
            self.pending.pop(correlation_id, None)
        return orjson.loads(body)["r"]


async def run_raw(args: argparse.Namespace) -> str:
    import aio_pika

    connection = await aio_pika.connect(args.url)
    client = RawRpcClient(await connection.channel(publisher_confirms=False), args.queue)
    await client.start()

    async def call() -> None:
        reply = await client.call("echo", value=ECHO_VALUE)
        assert reply == {"echo": ECHO_VALUE}, reply

    await call()
    print("ready", flush=True)
    report = await command_loop(rpc_measure(call))
    await connection.close()
    return report


def run_oslo(args: argparse.Namespace) -> str:
    import oslo_messaging

    from bench.oslo_server import oslo_conf

    conf = oslo_conf(quorum=args.queue_type == "quorum")
    transport = oslo_messaging.get_rpc_transport(conf, url=args.url)
    target = oslo_messaging.Target(exchange=args.exchange, topic=args.topic)
    client = oslo_messaging.get_rpc_client(transport, target, timeout=CALL_TIMEOUT_S)

    def call() -> None:
        reply = client.call({}, "echo", value=ECHO_VALUE)
        assert reply == {"echo": ECHO_VALUE}, reply

    def measure(concurrency: int, settle: float, seconds: float) -> Window:
        """Slices of a thread pool, one blocking call in flight per thread."""
        window = Window()

        def worker() -> int:
            done = 0
            while not window.stopping:
                started = time.perf_counter()
                call()
                done += 1
                if window.recording:
                    window.latencies.append(time.perf_counter() - started)
            return done

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="call") as pool:
            futures = [pool.submit(worker) for _ in range(concurrency)]
            time.sleep(settle)
            window.begin()
            time.sleep(seconds)
            window.end()
            window.done = sum(future.result() for future in futures)
        return window

    call()
    print("ready", flush=True)
    ledger = Ledger()
    for line in sys.stdin:
        command, concurrency, seconds = ledger.parse(line)
        if command == "report":
            break
        cpu = time.process_time()
        window = measure(concurrency, 0.0 if command == "warmup" else SETTLE_S, seconds)
        window.cpu_s = time.process_time() - cpu
        print(ledger.record(command, concurrency, window), flush=True)
    else:
        raise SystemExit("stdin closed before report")
    # The reply queue outlives the client (x-expires); name it so that it can be deleted.
    reply_queue = getattr(transport._driver, "_reply_q", None)
    transport.cleanup()
    return ledger.report(reply_queue=reply_queue)


def event_batch(routing_key: str, size: int) -> list[tuple[str, str, bytes]]:
    """``size`` distinct, realistic events as (event_type, event_id, body)."""
    batch = []
    for _ in range(size):
        event_id = str(uuid.uuid4())
        body = orjson.dumps(
            {
                "id": event_id,
                "event_type": routing_key,
                "version": "1.0",
                "timestamp": "2025-01-01T00:00:00Z",
                "project_id": uuid.uuid4().hex,
                "request_id": f"req-{uuid.uuid4()}",
                "user_id": uuid.uuid4().hex,
                "payload": {"port_id": str(uuid.uuid4()), "status": "ACTIVE", "mtu": 1500},
            }
        )
        batch.append((routing_key, event_id, body))
    return batch


def batch_measure(
    publish_batch: Callable[[int], Awaitable[None]], sync: Callable[[], Awaitable[object]]
) -> Measure:
    """Slices of back-to-back batches of ``concurrency`` messages, each batch timed.

    A batch is counted if it finishes after the window opened; the one running when the
    window closes is finished and counted too, and ``sync`` makes a round trip so that
    everything counted has reached the broker before the clock stops.
    """

    async def measure(concurrency: int, settle: float, seconds: float) -> Window:
        window = Window(messages=0)

        async def pump() -> None:
            while not window.stopping:
                started = time.perf_counter()
                await publish_batch(concurrency)
                window.done += concurrency
                if window.recording or window.stopping:
                    window.messages = (window.messages or 0) + concurrency
                    window.latencies.append(time.perf_counter() - started)

        task = asyncio.create_task(pump())
        await asyncio.sleep(settle)
        window.begin()
        await asyncio.sleep(seconds)
        window.stopping = True
        await task
        await sync()
        window.ended = time.perf_counter()
        window.recording = False
        return window

    return measure


def windowed_measure(publish: Callable[[int], Awaitable[None]]) -> Measure:
    """Slices of ``concurrency`` tasks publishing one message at a time (a sliding window)."""

    async def measure(concurrency: int, settle: float, seconds: float) -> Window:
        window = Window(messages=0)

        async def worker(index: int) -> None:
            while not window.stopping:
                started = time.perf_counter()
                await publish(index)
                window.done += 1
                if window.recording or window.stopping:
                    window.messages = (window.messages or 0) + 1
                    window.latencies.append(time.perf_counter() - started)

        tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
        await asyncio.sleep(settle)
        window.begin()
        await asyncio.sleep(seconds)
        window.stopping = True
        await asyncio.gather(*tasks)
        window.ended = time.perf_counter()
        window.recording = False
        return window

    return measure


async def run_events_confirmed(args: argparse.Namespace) -> str:
    import common_rpc.events as events
    from common_rpc import Broker, EventPublisher, MessagingConfig

    events.EXCHANGE = args.exchange  # a private exchange: nothing else sees these events
    broker = Broker(MessagingConfig(url=args.url), name="bench-publisher")
    publisher = EventPublisher(broker)
    batch = event_batch(args.routing_key, args.batch)
    await publisher.publish_raw(*batch[0])

    async def publish_batch(size: int) -> None:
        await publisher.publish_many(batch[:size])

    async def publish_one(index: int) -> None:
        await publisher.publish_raw(*batch[index % len(batch)])

    async def confirmed() -> None:  # every counted message is confirmed already
        return None

    if args.system == "events-confirmed":
        measure = batch_measure(publish_batch, confirmed)
    else:
        measure = windowed_measure(publish_one)
    print("ready", flush=True)
    report = await command_loop(measure)
    await broker.close()
    return report


async def run_events_unconfirmed(args: argparse.Namespace) -> str:
    import aio_pika

    connection = await aio_pika.connect(args.url)
    channel = await connection.channel(publisher_confirms=False)
    exchange = await channel.declare_exchange(
        args.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    batch = event_batch(args.routing_key, args.batch)

    async def publish_batch(size: int) -> None:
        for event_type, event_id, body in batch[:size]:
            await exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=event_id,
                    type=event_type,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=event_type,
                mandatory=False,
            )

    async def sync() -> None:  # the broker answers this after the publishes before it
        await channel.declare_queue(args.queue, passive=True)

    print("ready", flush=True)
    report = await command_loop(batch_measure(publish_batch, sync))
    await connection.close()
    return report


ASYNC_SYSTEMS: dict[str, Callable[[argparse.Namespace], Awaitable[str]]] = {
    "common": run_common,
    "raw": run_raw,
    "events-confirmed": run_events_confirmed,
    "events-concurrent": run_events_confirmed,
    "events-unconfirmed": run_events_unconfirmed,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=[*ASYNC_SYSTEMS, "oslo"])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--topic", default="", help="common-rpc or oslo topic")
    parser.add_argument("--queue", default="", help="raw RPC queue, or the events queue")
    parser.add_argument("--exchange", default="", help="oslo target or events exchange")
    parser.add_argument("--routing-key", default="bench.port.update.end")
    parser.add_argument("--queue-type", choices=["classic", "quorum"], default="classic")
    parser.add_argument("--batch", type=int, default=500, help="largest event batch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.system == "oslo":
        report = run_oslo(args)
    else:
        import uvloop

        report = uvloop.run(ASYNC_SYSTEMS[args.system](args))
    print(report, flush=True)


if __name__ == "__main__":
    main()
