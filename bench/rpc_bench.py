"""RPC and event-publishing benchmark: common-rpc against raw aio-pika and oslo.messaging.

One run, one broker. Every RPC system gets its own server process and its own client
process (``bench.aio_server``, ``bench/oslo_server.py``, ``bench.client``):

- common-rpc: ``RpcServer`` + ``RpcClient.call(topic, "echo", value=...)``;
- raw aio-pika: the floor: direct reply-to, JSON, correlation ids, a dict of futures;
- oslo.messaging: rabbit driver, threading executor, ``call()`` from a thread pool.

The asyncio processes run on uvloop, as the services do under uvicorn. Every cell
(system x concurrency) is warmed up, then measured in ``--slices`` slices that add up to
``--seconds``; the slices of all cells are interleaved in balanced orders, so that a
noisy neighbour or a slow minute hits every system alike and the ratios stay meaningful
on a shared machine. Alongside rates and latencies, the CPU time that the client and
the server process spend per call is reported: it is much steadier than the rates.

Then persistent events go to a private durable topic exchange bound to a durable queue,
with publisher confirms (``EventPublisher.publish_many``, a batch of confirms in flight,
as the outbox relay does; and concurrent ``publish_raw`` tasks, a sliding window) and
without (a raw aio-pika channel with ``publisher_confirms=False``).

Prints a table, the ratios with their targets, and one JSON line with every figure.
The exit status is 0 whatever the ratios are, and 1 only if a system failed to run.
Everything declared on the broker has a random suffix and is deleted at the end.

    python -m bench.rpc_bench [--seconds 6] [--slices 6] [--queue-type quorum]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aio_pika
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RPC_SYSTEMS = ("raw", "common", "oslo")
EVENT_SYSTEMS = ("events-unconfirmed", "events-confirmed", "events-concurrent")
LABELS = {
    "common": "common-rpc",
    "raw": "raw aio-pika",
    "oslo": "oslo.messaging",
    "events-confirmed": "events: publish_many",
    "events-concurrent": "events: publish_raw tasks",
    "events-unconfirmed": "events: raw, no confirms",
}
EVENT_ROUTING_KEY = "bench.port.update.end"


@dataclass(frozen=True)
class Names:
    """Everything this run declares on the broker, unique per run."""

    suffix: str

    @property
    def common_topic(self) -> str:
        return f"bench.{self.suffix}"

    @property
    def common_queue(self) -> str:
        return f"rpc.{self.common_topic}"  # common_rpc.rpc.queue_name()

    @property
    def raw_queue(self) -> str:
        return f"bench.raw.{self.suffix}"

    @property
    def oslo_topic(self) -> str:
        return f"bench_oslo_{self.suffix}"

    @property
    def events(self) -> str:
        return f"bench.events.{self.suffix}"

    def queues(self) -> list[str]:
        return [
            self.common_queue,
            self.raw_queue,
            self.oslo_topic,
            f"{self.oslo_topic}.bench",
            self.events,
        ]

    def exchanges(self) -> list[str]:
        return [self.oslo_topic, f"{self.oslo_topic}_fanout", self.events]


@dataclass(frozen=True)
class Ratio:
    """An acceptance ratio: ``numerator / denominator`` compared with ``target``."""

    key: str
    label: str
    numerator: tuple[str, int | None, str]
    denominator: tuple[str, int | None, str]
    target: float
    at_least: bool  # True: value >= target passes; False: value <= target passes


RATIOS = (
    Ratio("common_over_raw_rate_c64", "common-rpc / raw calls/s, c=64",
          ("common", 64, "rate"), ("raw", 64, "rate"), 0.85, True),
    Ratio("common_over_oslo_rate_c64", "common-rpc / oslo calls/s, c=64",
          ("common", 64, "rate"), ("oslo", 64, "rate"), 2.0, True),
    Ratio("common_over_raw_p50_c1", "common-rpc / raw p50, c=1",
          ("common", 1, "p50_ms"), ("raw", 1, "p50_ms"), 1.15, False),
    Ratio("publish_many_over_unconfirmed_rate", "confirmed publish_many / unconfirmed msg/s",
          ("events-confirmed", None, "rate"), ("events-unconfirmed", None, "rate"), 0.55, True),
    Ratio("publish_raw_over_unconfirmed_rate", "confirmed publish_raw / unconfirmed msg/s",
          ("events-concurrent", None, "rate"), ("events-unconfirmed", None, "rate"), 0.55, True),
)  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Child:
    """A child process that prints ``ready``, then answers each stdin line with one line."""

    def __init__(self, name: str, command: list[str], *, commands: bool) -> None:
        self.name = name
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [PYTHON, *command],
            cwd=ROOT,
            stdin=subprocess.PIPE if commands else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"{name} stdout", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)  # end of output

    def wait_ready(self, timeout: float = 60.0) -> None:
        line = self.readline(timeout)
        if line != "ready":
            raise RuntimeError(f"{self.name}: expected 'ready', got {line!r}")

    def readline(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is not None:
            return line
        status = "timed out" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        raise RuntimeError(f"{self.name} {status}:\n{self.log_tail()}")

    def ask(self, command: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"{self.name} is gone:\n{self.log_tail()}") from None
        return json.loads(self.readline(timeout))

    def log_tail(self) -> str:
        self.stderr.seek(0)
        return tail(self.stderr.read())

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def start(name: str, command: list[str], *, commands: bool) -> Child:
    child = Child(name, command, commands=commands)
    try:
        child.wait_ready()
    except RuntimeError:
        child.stop()
        raise
    return child


def williams_orders(n: int) -> list[list[int]]:
    """Orders of ``n`` cells in which each cell follows every other one equally often.

    A Williams design: ``n`` orders for even ``n``, ``2n`` for odd ``n``. With as many
    slices as orders, no system always runs right after the same (maybe heavier) one.
    """
    if n < 2:
        return [list(range(n))]
    first = [0]
    low, high = 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    orders = [[(cell + shift) % n for cell in first] for shift in range(n)]
    if n % 2:
        orders += [order[::-1] for order in orders]
    return orders


def cpu_seconds(child: Child | None) -> float:
    if child is None:
        return 0.0
    times = psutil.Process(child.proc.pid).cpu_times()
    return times.user + times.system


def run_cells(
    clients: dict[str, Child],
    servers: dict[str, Child],
    cells: list[tuple[str, int]],
    args: argparse.Namespace,
    errors: list[str],
    after: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, Any]]:
    """Warm every cell up, then measure them in interleaved slices; the clients' reports.

    Every slice visits every cell, in the orders of ``williams_orders`` so that drift, noisy
    neighbours and whatever a cell leaves behind hit every system alike. ``after`` runs
    after each cell's slice. The server's CPU time per call is added to the cells of the
    systems that have a server.
    """
    timeout = args.warmup + args.seconds + 120
    slice_s = args.seconds / args.slices
    failed: set[str] = set()
    server_cpu: dict[tuple[str, int], float] = {}
    server_calls: dict[tuple[str, int], int] = {}

    def ask(system: str, command: str) -> dict[str, Any] | None:
        if system in failed:
            return None
        try:
            return clients[system].ask(command, timeout)
        except (RuntimeError, ValueError) as exc:
            failed.add(system)
            errors.append(f"{LABELS[system]} client failed on {command!r}: {exc}")
            return None

    for system, concurrency in cells:
        log(f"warm-up: {LABELS[system]}, {concurrency}")
        ask(system, f"warmup {concurrency} {args.warmup}")
        after()
    orders = williams_orders(len(cells))
    for index in range(args.slices):
        log(f"slice {index + 1}/{args.slices}: {len(cells)} cells x {slice_s:g}s")
        for position in orders[index % len(orders)]:
            system, concurrency = cells[position]
            cpu = cpu_seconds(servers.get(system))
            reply = ask(system, f"measure {concurrency} {slice_s}")
            if reply is not None and system in servers:
                key = (system, concurrency)
                server_cpu[key] = server_cpu.get(key, 0.0) + cpu_seconds(servers[system]) - cpu
                server_calls[key] = server_calls.get(key, 0) + reply["done"]
            after()
    reports = {}
    for system in clients:
        report = ask(system, "report")
        if report is not None:
            reports[system] = report
    for (system, concurrency), calls in server_calls.items():
        cell = reports.get(system, {}).get("cells", {}).get(str(concurrency))
        if cell is not None and calls:
            cell["server_cpu_us"] = round(server_cpu[(system, concurrency)] / calls * 1e6, 1)
    return reports


async def declare_events(url: str, names: Names, queue_type: str) -> None:
    """The private durable topic exchange and durable queue the event cells publish to."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            names.events, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            names.events, durable=True, arguments={"x-queue-type": queue_type}
        )
        await queue.bind(exchange, routing_key="#")
    finally:
        await connection.close()


async def purge(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        result = await declared.purge()
        return int(result.message_count or 0)
    finally:
        await connection.close()


async def delete_all(url: str, queues: list[str], exchanges: list[str]) -> None:
    """Delete what this run declared; a name that does not exist is not an error."""
    connection = await aio_pika.connect(url)
    try:
        for kind, name in [("queue", q) for q in queues] + [("exchange", e) for e in exchanges]:
            channel = await connection.channel()
            try:
                if kind == "queue":
                    await channel.queue_delete(name)
                else:
                    await channel.exchange_delete(name)
                await channel.close()
            except aio_pika.exceptions.AMQPError as exc:
                log(f"could not delete {kind} {name}: {exc}")
    finally:
        await connection.close()


def find(cells: list[dict[str, Any]], system: str, concurrency: int | None) -> dict | None:
    for cell in cells:
        if cell["system"] == system and concurrency in (None, cell["concurrency"]):
            return cell
    return None


def evaluate(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ratios: dict[str, dict[str, Any]] = {}
    for ratio in RATIOS:
        top = find(cells, *ratio.numerator[:2])
        bottom = find(cells, *ratio.denominator[:2])
        value = None
        if top and bottom and top.get(ratio.numerator[2]) and bottom.get(ratio.denominator[2]):
            value = round(top[ratio.numerator[2]] / bottom[ratio.denominator[2]], 3)
        passed = None
        if value is not None:
            passed = value >= ratio.target if ratio.at_least else value <= ratio.target
        ratios[ratio.key] = {
            "value": value,
            "target": f"{'>=' if ratio.at_least else '<='}{ratio.target}",
            "pass": passed,
        }
    return ratios


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(
    console: Console,
    cells: list[dict[str, Any]],
    ratios: dict[str, dict[str, Any]],
    errors: list[str],
    args: argparse.Namespace,
) -> None:
    table = Table(title=f"RPC and events on one broker ({args.queue_type} queues, uvloop)")
    table.add_column("system", no_wrap=True)
    table.add_column("conc.", justify="right")
    table.add_column("calls/s|msg/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("measured", justify="right")
    table.add_column("slices min-max /s", justify="right")
    table.add_column("client CPU us", justify="right")
    table.add_column("server CPU us", justify="right")
    for cell in cells:
        rates = cell["slice_rates"]
        table.add_row(
            LABELS[cell["system"]],
            str(cell["concurrency"]),
            fmt(cell["rate"], ",.0f"),
            fmt(cell["p50_ms"], ".2f"),
            fmt(cell["p99_ms"], ".2f"),
            f"{cell['count']:,} in {cell['elapsed_s']:.1f}s",
            f"{min(rates):,.0f}-{max(rates):,.0f}" if rates else "-",
            fmt(cell.get("client_cpu_us"), ",.0f"),
            fmt(cell.get("server_cpu_us"), ",.0f"),
        )
    console.print(table)
    console.print(
        "conc.: RPC calls in flight; events: batch size (publish_many, raw) or tasks\n"
        "(publish_raw). Event p50/p99: per batch, per message for publish_raw.\n"
        "CPU us: CPU time of the client / server process per call or message."
    )
    checks = Table(title="Acceptance ratios")
    checks.add_column("ratio")
    checks.add_column("value", justify="right")
    checks.add_column("target", justify="right")
    checks.add_column("result")
    for ratio in RATIOS:
        result = ratios[ratio.key]
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[result["pass"]]
        checks.add_row(ratio.label, fmt(result["value"], ".3f"), result["target"], verdict)
    console.print(checks)
    for error in errors:
        console.print(f"ERROR {error}", markup=False, highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--oslo-url", default="rabbit://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--queue-type", choices=["classic", "quorum"], default="classic")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured time per cell")
    parser.add_argument(
        "--slices", type=int, default=6, help="interleaved slices per cell (6 balances orders)"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up time per cell")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 64],
        help="comma-separated RPC concurrencies (the ratios use 1 and 64)",
    )
    parser.add_argument("--batch", type=int, default=500, help="events per batch / in flight")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = Names(secrets.token_hex(4))
    queue_type = ["--queue-type", args.queue_type]
    servers = {
        "common": ["-m", "bench.aio_server", "common", "--url", args.url,
                   "--topic", names.common_topic, *queue_type],
        "raw": ["-m", "bench.aio_server", "raw", "--url", args.url,
                "--queue", names.raw_queue, *queue_type],
        "oslo": [str(ROOT / "bench" / "oslo_server.py"), "--url", args.oslo_url,
                 "--topic", names.oslo_topic, "--exchange", names.oslo_topic, *queue_type],
    }  # fmt: skip
    clients = {
        "common": ["common", "--url", args.url, "--topic", names.common_topic],
        "raw": ["raw", "--url", args.url, "--queue", names.raw_queue],
        "oslo": ["oslo", "--url", args.oslo_url, "--topic", names.oslo_topic,
                 "--exchange", names.oslo_topic],
    }  # fmt: skip
    for system in EVENT_SYSTEMS:
        clients[system] = [system, "--url", args.url, "--exchange", names.events,
                           "--queue", names.events, "--routing-key", EVENT_ROUTING_KEY,
                           "--batch", str(args.batch)]  # fmt: skip

    errors: list[str] = []
    reports: dict[str, dict[str, Any]] = {}
    children: list[Child] = []
    load_before = os.getloadavg()
    started = time.monotonic()
    log(f"run {names.suffix}: {args.queue_type} queues, {args.seconds:g}s per cell")

    def start_all(systems: tuple[str, ...]) -> tuple[dict[str, Child], dict[str, Child]]:
        """Start each system's server (if it has one) and client; those that are ready."""
        ready: dict[str, Child] = {}
        serving: dict[str, Child] = {}
        for system in systems:
            try:
                if system in servers:
                    serving[system] = start(f"{LABELS[system]} server", servers[system],
                                            commands=False)  # fmt: skip
                    children.append(serving[system])
                client = start(f"{LABELS[system]} client",
                               ["-m", "bench.client", *clients[system], *queue_type],
                               commands=True)  # fmt: skip
            except RuntimeError as exc:
                errors.append(str(exc))
                serving.pop(system, None)
                continue
            children.append(client)
            ready[system] = client
        return ready, serving

    def stop_all() -> None:
        while children:
            child = children.pop()
            begun = time.monotonic()
            child.stop()
            if time.monotonic() - begun > 1:
                log(f"{child.name} took {time.monotonic() - begun:.1f}s to stop")

    try:
        log("starting RPC servers and clients")
        rpc_clients, rpc_servers = start_all(RPC_SYSTEMS)
        rpc_cells = [(s, c) for c in args.concurrency for s in RPC_SYSTEMS if s in rpc_clients]
        reports.update(run_cells(rpc_clients, rpc_servers, rpc_cells, args, errors))
        stop_all()

        asyncio.run(declare_events(args.url, names, args.queue_type))
        event_clients, _ = start_all(EVENT_SYSTEMS)
        event_cells = [(s, args.batch) for s in EVENT_SYSTEMS if s in event_clients]

        def purge_events() -> None:
            asyncio.run(purge(args.url, names.events))

        reports.update(run_cells(event_clients, {}, event_cells, args, errors, purge_events))
    finally:
        stop_all()
        extra_queues = [r["reply_queue"] for r in reports.values() if r.get("reply_queue")]
        asyncio.run(delete_all(args.url, names.queues() + extra_queues, names.exchanges()))

    cells = []
    for concurrency in args.concurrency:
        for system in ("common", "raw", "oslo"):
            cell = reports.get(system, {}).get("cells", {}).get(str(concurrency))
            if cell:
                cells.append({"system": system, "concurrency": concurrency, **cell})
    for system in ("events-confirmed", "events-concurrent", "events-unconfirmed"):
        cell = reports.get(system, {}).get("cells", {}).get(str(args.batch))
        if cell:
            cells.append({"system": system, "concurrency": args.batch, **cell})
    ratios = evaluate(cells)
    report(Console(width=140), cells, ratios, errors, args)
    summary = {
        "run": names.suffix,
        "queue_type": args.queue_type,
        "event_loop": "uvloop",
        "seconds_per_cell": args.seconds,
        "slices": args.slices,
        "warmup": args.warmup,
        "batch": args.batch,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.monotonic() - started, 1),
        "cells": cells,
        "ratios": ratios,
        "errors": errors,
    }
    print(json.dumps(summary), flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
