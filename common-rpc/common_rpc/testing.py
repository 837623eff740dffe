"""Test helpers shared by every service's suite: a private RabbitMQ node and waiters.

``RabbitNode`` runs a second RabbitMQ node of the test's own on another port, so a test
can stop and restart "the broker" without touching the machine's one.

    node = RabbitNode.start_new(port=5673)
    ...
    node.stop_app(); node.start_app()   # a broker restart, as clients see it
    node.destroy()
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from fastapi import FastAPI

from .chassis.identity import IdentitySigner, generate_keypair

T = TypeVar("T")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RabbitNode:
    """A throwaway RabbitMQ node (its own name, ports and data directory)."""

    name: str
    port: int
    dist_port: int
    base: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @classmethod
    def start_new(cls, port: int | None = None, timeout: float = 60.0) -> RabbitNode:
        port = port or free_port()
        base = Path(tempfile.mkdtemp(prefix="stackling-rmq-"))
        name = f"sltest{uuid.uuid4().hex[:8]}@localhost"
        (base / "mnesia").mkdir()
        (base / "log").mkdir()
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")
        shutil.chown(base, "rabbitmq", "rabbitmq")
        for child in base.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")
        node = cls(name=name, port=port, dist_port=free_port(), base=base)
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=node._env(), check=True, capture_output=True
        )
        try:
            node._wait(up=True, timeout=timeout)
        except TimeoutError:
            node.destroy()
            raise
        return node

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.base / "pid"),
        )
        return env

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _wait(self, *, up: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while _port_open(self.port) != up:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"RabbitMQ node {self.name} did not come {'up' if up else 'down'}"
                )
            time.sleep(0.1)

    def stop_app(self) -> None:
        """Stop the broker application: every client connection drops, the port closes."""
        self._ctl("stop_app")
        self._wait(up=False, timeout=30)

    def start_app(self) -> None:
        self._ctl("start_app")
        self._wait(up=True, timeout=60)

    def destroy(self) -> None:
        try:
            self._ctl("stop")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.base, ignore_errors=True)


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy; the last value otherwise raises."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running_app(
    app: FastAPI, base_url: str = "http://service"
) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app`` (its lifespan: migrations, broker, consumers) and talk to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def signing_keys(directory: Path) -> tuple[IdentitySigner, Path]:
    """A gateway signing key for tests, and the public key file services verify with."""
    private, public = generate_keypair(directory)
    return IdentitySigner.from_file(private), public
