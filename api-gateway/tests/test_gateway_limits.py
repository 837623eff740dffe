"""Request limits at the door, between real servers: the gateway's edge under uvicorn with
the options ``stackling-gateway`` serves with, and a chassis backend behind its proxy.

A body over the limit is 413 in the called API's shape, decided from Content-Length before
a byte of the body is read, or counted as a chunked body streams; image data is exempt. A
client that stalls in its headers or its body is answered 408 and dropped at the deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from gateway_fixtures import FakeTokenValidator, LiveServer, build_gateway, serve
from pydantic_settings import SettingsConfigDict

from api_gateway.api.limits import install_limits
from api_gateway.server import server_options
from api_gateway.settings import GatewaySettings
from common_rpc.chassis.app import make_app
from common_rpc.chassis.faults import neutron_fault
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.settings import ServiceSettings
from common_rpc.testing import signing_keys

LIMIT = 4096
TIMEOUT_S = 1.0


class BackendSettings(ServiceSettings):
    service_name: ClassVar[str] = "backend"
    model_config = SettingsConfigDict(env_prefix="BACKEND_", extra="ignore")


@dataclass
class Seen:
    """What reached the backend whole: the size of each body it finished reading."""

    bodies: list[int] = field(default_factory=list)


def backend_app(data_dir: Path, seen: Seen) -> FastAPI:
    router = APIRouter()

    async def count(request: Request) -> int:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        seen.bodies.append(size)
        return size

    @router.post("/v2.0/networks", status_code=201)
    async def create_network(request: Request) -> dict[str, Any]:
        return {"size": await count(request)}

    @router.post("/v2.1/servers", status_code=202)
    async def create_server(request: Request) -> dict[str, Any]:
        return {"size": await count(request)}

    @router.put("/image/v2/images/{image_id}/file")
    async def upload(request: Request, image_id: str) -> dict[str, Any]:
        return {"size": await count(request)}

    settings = BackendSettings(data_dir=data_dir, log_json=False)
    runtime = ServiceRuntime(settings, database=False)
    return make_app(
        settings, runtime, title="backend", version="1", routers=[router],
        fault_formatter=neutron_fault,
    )  # fmt: skip


@dataclass
class Edge:
    url: str
    port: int
    token: str
    seen: Seen


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir = tmp_path_factory.mktemp("limits")
    signer, _public = signing_keys(data_dir / "keys")
    seen = Seen()
    backend = LiveServer(backend_app(data_dir, seen))
    backend.start()
    settings = GatewaySettings(
        data_dir=data_dir,
        log_json=False,
        compute_urls=[backend.url],
        network_urls=[backend.url],
        max_request_body_bytes=LIMIT,
        request_timeout_s=TIMEOUT_S,
    )
    validator = FakeTokenValidator()
    app = build_gateway(settings, validator, signer)
    install_limits(app, settings)  # as create_app does, after every other layer
    try:
        with serve(app, **server_options(settings)) as url:
            port = int(url.rsplit(":", 1)[1])
            yield Edge(url, port, validator.issue("p1", "member"), seen)
    finally:
        backend.stop()


async def _raw(
    port: int, data: bytes, *, until_eof: bool = True, wait_s: float = 10.0
) -> tuple[bytes, float]:
    """Send ``data``; (what the server sent, seconds it took): until it closed, or else
    until its first answer is complete."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(data)
        await writer.drain()
        if until_eof:
            reply = await asyncio.wait_for(reader.read(), wait_s)
        else:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait_s)
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            reply = head + await asyncio.wait_for(reader.readexactly(length), wait_s)
        return reply, time.monotonic() - started
    finally:
        writer.close()


def _status_and_body(reply: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/network/v2.0/networks", lambda b: b["NeutronError"]["type"]),
        ("/compute/v2.1/servers", lambda b: b["overLimit"]["code"]),
        ("/identity/v3/auth/tokens", lambda b: b["error"]["code"]),
    ],
)
async def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(
    edge: Edge, path: str, shape: Any
) -> None:
    before = len(edge.seen.bodies)
    # Headers only: an answer proves the gateway did not wait for the ten megabytes.
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: {edge.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    )
    reply, took = await _raw(edge.port, head.encode(), until_eof=False)
    status, body = _status_and_body(reply)
    assert status == 413
    assert shape(body)  # the called API's own fault shape
    assert str(LIMIT) in json.dumps(body)
    assert took < TIMEOUT_S  # not the stalled-body deadline
    assert len(edge.seen.bodies) == before  # the service never saw it


async def test_a_chunked_body_is_cut_at_the_limit(edge: Edge) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 64 KiB, sixteen times the limit
            sent += 1024
            yield b"x" * 1024

    before = len(edge.seen.bodies)
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        reply = await http.post(
            "/network/v2.0/networks", content=chunks(), headers={"X-Auth-Token": edge.token}
        )
    assert reply.status_code == 413, reply.text
    assert reply.json()["NeutronError"]["type"] == "HTTPRequestEntityTooLarge"
    assert reply.headers["connection"] == "close"
    assert len(edge.seen.bodies) == before  # no request reached the service whole


async def test_bodies_up_to_the_limit_and_image_data_of_any_size_pass(edge: Edge) -> None:
    headers = {"X-Auth-Token": edge.token}

    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"y" * 1024

    async with httpx.AsyncClient(base_url=edge.url, timeout=30) as http:
        at_limit = await http.post("/network/v2.0/networks", content=b"z" * LIMIT, headers=headers)
        assert at_limit.status_code == 201, at_limit.text
        assert at_limit.json() == {"size": LIMIT}
        sized = await http.put(
            "/image/v2/images/i1/file", content=b"i" * (LIMIT * 50), headers=headers
        )
        assert sized.status_code == 200, sized.text
        assert sized.json() == {"size": LIMIT * 50}
        streamed = await http.put("/image/v2/images/i1/file", content=chunks(300), headers=headers)
        assert streamed.status_code == 200, streamed.text
        assert streamed.json() == {"size": 300 * 1024}
        # Only the image data itself: any other image call is limited like the rest.
        other = await http.put(
            "/image/v2/images/i1/tags/t", content=b"t" * (LIMIT + 1), headers=headers
        )
        assert other.status_code == 413
        assert other.json()["code"] == 413  # Glance's flat shape


@pytest.mark.parametrize("path", ["/network/v2.0/networks", "/image/v2/images/i1/file"])
async def test_a_body_that_stalls_is_408_at_the_deadline(edge: Edge, path: str) -> None:
    method = "PUT" if path.startswith("/image") else "POST"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: {edge.token}\r\n"
        "Content-Length: 100\r\n\r\n" + "a" * 10
    )
    reply, took = await _raw(edge.port, head.encode())
    status, body = _status_and_body(reply)
    assert status == 408, reply
    assert "in time" in json.dumps(body)
    assert TIMEOUT_S * 0.9 <= took < TIMEOUT_S + 3


async def test_a_limited_body_trickled_in_is_408_at_its_deadline(edge: Edge) -> None:
    # Each byte well inside the timeout, the whole body not: a limited body has one deadline.
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    started = time.monotonic()
    writer.write(
        f"POST /network/v2.0/networks HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: {edge.token}\r\n"
        "Content-Length: 100\r\n\r\n".encode()
    )

    async def trickle() -> None:
        with suppress(ConnectionError):
            for _ in range(100):
                await asyncio.sleep(TIMEOUT_S / 5)
                writer.write(b"b")
                await writer.drain()

    task = asyncio.create_task(trickle())
    try:
        reply = await asyncio.wait_for(reader.read(), 10)
    finally:
        task.cancel()
        writer.close()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert time.monotonic() - started < TIMEOUT_S + 3


async def test_headers_that_stall_are_408_and_a_silent_connection_is_closed(edge: Edge) -> None:
    reply, took = await _raw(edge.port, b"GET /network/v2.0/networks HTTP/1.1\r\nHost: gw\r\n")
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert TIMEOUT_S * 0.9 <= took < TIMEOUT_S + 3
    silent, took = await _raw(edge.port, b"")
    assert silent == b""
    assert TIMEOUT_S * 0.9 <= took < TIMEOUT_S + 3
