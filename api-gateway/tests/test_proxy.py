"""The proxy between real HTTP servers: a gateway and chassis backends under uvicorn.

The backends verify the signed identity header as every service does and echo what they
got, so each test sees exactly what a service would receive through the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from gateway_fixtures import FakeTokenValidator, LiveServer, build_gateway, serve, wait_until
from pydantic_settings import SettingsConfigDict
from starlette.responses import JSONResponse, Response, StreamingResponse

from api_gateway.api.proxy import ProxyMiddleware
from api_gateway.settings import GatewaySettings
from common_rpc import NotFound, current_context
from common_rpc.chassis.app import make_app
from common_rpc.chassis.faults import neutron_fault
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.settings import ServiceSettings
from common_rpc.testing import free_port, signing_keys

PUBLIC_URL = "http://gateway.test:8080"
RID = "req-0b8f1a4e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
CHUNK = 64 * 1024


class BackendSettings(ServiceSettings):
    service_name: ClassVar[str] = "backend"
    model_config = SettingsConfigDict(env_prefix="BACKEND_", extra="ignore")


@dataclass
class Gates:
    """Cross-thread signals between a test and the backend serving it."""

    upload_started: threading.Event = field(default_factory=threading.Event)
    download_release: threading.Event = field(default_factory=threading.Event)
    download_closed: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        for gate in (self.upload_started, self.download_release, self.download_closed):
            gate.clear()


def backend_app(data_dir: Path, name: str, gates: Gates) -> FastAPI:
    """A chassis service that echoes what reached it, plus streaming and fault routes."""
    router = APIRouter()

    def echo(request: Request, body: bytes = b"") -> dict[str, Any]:
        ctx = current_context()
        return {
            "replica": name,
            "project_id": ctx.project_id,
            "roles": sorted(ctx.roles),
            "request_id": ctx.request_id,
            "path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": {k: v for k, v in request.headers.items()},
            "body": body.decode(),
        }

    @router.get("/")
    async def versions(request: Request) -> dict[str, Any]:
        return {"versions": [{"id": "v2.0"}], "identity": IDENTITY_HEADER in request.headers}

    @router.get("/v2.0/networks")
    async def list_networks(request: Request) -> dict[str, Any]:
        return echo(request)

    @router.post("/v2.0/networks", status_code=201)
    async def create_network(request: Request) -> Response:
        location = f"{str(request.base_url).rstrip('/')}/v2.0/networks/n1"
        return JSONResponse(echo(request, await request.body()), 201, {"Location": location})

    @router.put("/v2.0/networks/{network_id}")
    async def update_network(request: Request, network_id: str) -> dict[str, Any]:
        return echo(request, await request.body())

    @router.get("/v2.0/agents")
    async def list_agents(request: Request) -> dict[str, Any]:
        return echo(request)

    @router.post("/v2.1/servers/{server_id}/action")
    async def server_action(request: Request, server_id: str) -> dict[str, Any]:
        return echo(request, await request.body())

    @router.get("/v2.1/servers/{server_id}")
    async def show_server(server_id: str) -> dict[str, Any]:
        raise NotFound(f"Server {server_id} could not be found.")

    @router.get("/v3/{project_id}/volumes")
    async def list_volumes(request: Request, project_id: str) -> dict[str, Any]:
        return echo(request)

    @router.put("/image/v2/images/{image_id}/file")
    async def upload(request: Request, image_id: str) -> dict[str, Any]:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            if chunk:
                gates.upload_started.set()
            digest.update(chunk)
            size += len(chunk)
        return {"size": size, "sha256": digest.hexdigest(), "replica": name}

    @router.get("/image/v2/images/{image_id}/file")
    async def download(image_id: str) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"a" * CHUNK
                await wait_until(gates.download_release.is_set, timeout=10)
                for _ in range(15):
                    yield b"b" * CHUNK
            finally:
                gates.download_closed.set()

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    settings = BackendSettings(data_dir=data_dir, log_json=False)
    runtime = ServiceRuntime(settings, database=False)
    return make_app(
        settings,
        runtime,
        title=name,
        version="1",
        routers=[router],
        fault_formatter=neutron_fault,
        public_paths={"/"},
    )


@dataclass
class Backends:
    data_dir: Path
    signer: IdentitySigner
    urls: list[str]
    gates: list[Gates]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    data_dir = tmp_path_factory.mktemp("proxy")
    signer, _public = signing_keys(data_dir / "keys")
    gates = [Gates(), Gates()]
    servers = [LiveServer(backend_app(data_dir, f"b{i}", gates[i])) for i in range(len(gates))]
    for server in servers:
        server.start()
    try:
        yield Backends(data_dir, signer, [s.url for s in servers], gates)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def validator() -> FakeTokenValidator:
    return FakeTokenValidator()


def _settings(backends: Backends, **urls: list[str]) -> GatewaySettings:
    defaults = {
        "compute_urls": backends.urls[:1],
        "network_urls": backends.urls,
        "volume_urls": backends.urls[:1],
    }
    return GatewaySettings(
        data_dir=backends.data_dir, public_url=PUBLIC_URL, log_json=False, **{**defaults, **urls}
    )


@pytest.fixture
def gateway(backends: Backends, validator: FakeTokenValidator) -> Iterator[str]:
    for gates in backends.gates:
        gates.reset()
    with serve(build_gateway(_settings(backends), validator, backends.signer)) as url:
        yield url


async def test_forwards_with_signed_identity_request_id_and_raw_query(
    gateway: str, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "member")
    async with httpx.AsyncClient(base_url=gateway) as http:
        reply = await http.get(
            "/network/v2.0/networks?name=a%20b&fields=id&fields=name",
            headers={"X-Auth-Token": token, "X-Request-Id": RID, "X-Custom": "kept"},
        )
    assert reply.status_code == 200, reply.text
    seen = reply.json()
    assert seen["project_id"] == "p1"
    assert seen["roles"] == ["member", "reader"]
    assert seen["request_id"] == RID
    assert seen["path"] == "/v2.0/networks"
    assert seen["query"] == "name=a%20b&fields=id&fields=name"
    assert seen["headers"]["x-custom"] == "kept"
    assert "x-auth-token" not in seen["headers"]
    assert seen["headers"]["x-forwarded-prefix"] == "/network"
    assert seen["headers"]["x-forwarded-host"] == "gateway.test:8080"
    assert reply.headers.get_list("x-request-id") == [RID]
    assert reply.headers.get_list("x-openstack-request-id") == [RID]


async def test_a_malformed_request_id_is_replaced(
    gateway: str, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "reader")
    async with httpx.AsyncClient(base_url=gateway) as http:
        reply = await http.get(
            "/network/v2.0/networks",
            headers={"X-Auth-Token": token, "X-Request-Id": "req-forged; drop"},
        )
    rid = reply.json()["request_id"]
    assert rid.startswith("req-") and rid != "req-forged; drop"
    assert reply.headers["x-request-id"] == rid


async def test_identity_is_signed_once_per_token_and_never_taken_from_the_client(
    gateway: str, validator: FakeTokenValidator
) -> None:
    first, second = validator.issue("p1", "member"), validator.issue("p2", "member")
    async with httpx.AsyncClient(base_url=gateway) as http:

        async def identity(token: str) -> str:
            reply = await http.get(
                "/network/v2.0/networks",
                headers={"X-Auth-Token": token, IDENTITY_HEADER: "forged"},
            )
            assert reply.status_code == 200, reply.text
            return reply.json()["headers"][IDENTITY_HEADER.lower()]

        one, again, other = await identity(first), await identity(first), await identity(second)
    assert one == again != other
    assert "forged" not in (one, other)


async def test_version_documents_need_no_token(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as http:
        for path in ("/network", "/network/", "/compute", "/compute/"):
            reply = await http.get(path, headers={IDENTITY_HEADER: "forged"})
            assert reply.status_code == 200, (path, reply.text)
            assert reply.json() == {"versions": [{"id": "v2.0"}], "identity": False}


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/network/v2.0/networks", {"NeutronError": {"type": "HTTPUnauthorized"}}),
        ("/compute/v2.1/servers", {"unauthorized": {"code": 401}}),
        ("/volume/v3/p1/volumes", {"unauthorized": {"code": 401}}),
        ("/image/v2/images", {"code": 401, "title": "Unauthorized"}),
    ],
)
async def test_no_or_unknown_token_is_401_in_the_service_shape(
    gateway: str, path: str, shape: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=gateway) as http:
        for headers in ({}, {"X-Auth-Token": "not-a-token"}):
            reply = await http.get(path, headers=headers)
            assert reply.status_code == 401
            body = reply.json()
            for key, value in shape.items():
                assert body[key] == value or value.items() <= body[key].items(), body
            assert reply.headers["www-authenticate"].startswith("Keystone uri=")


async def test_policy_refuses_by_role_and_unknown_operations(
    gateway: str, validator: FakeTokenValidator
) -> None:
    reader, member = validator.issue("p1", "reader"), validator.issue("p1", "member")
    admin = validator.issue("p1", "admin")
    async with httpx.AsyncClient(base_url=gateway) as http:

        async def status(method: str, path: str, token: str) -> int:
            reply = await http.request(method, path, headers={"X-Auth-Token": token}, json={})
            if reply.status_code == 403:
                assert reply.json()["NeutronError"]["type"] == "HTTPForbidden"
            return reply.status_code

        assert await status("POST", "/network/v2.0/networks", reader) == 403
        assert await status("POST", "/network/v2.0/networks", member) == 201
        # Neutron lists agents to anyone (the service gives a member an empty list) ...
        assert await status("GET", "/network/v2.0/agents", member) == 200
        # ... and keeps an agent's own routes for admins.
        assert await status("GET", "/network/v2.0/agents/a1", member) == 403
        assert await status("GET", "/network/v2.0/agents", admin) == 200
        assert await status("GET", "/network/v2.0/no-such-thing", admin) == 403
        assert await status("PATCH", "/network/v2.0/networks", admin) == 403


async def test_another_projects_path_is_404(gateway: str, validator: FakeTokenValidator) -> None:
    member, admin = validator.issue("p1", "member"), validator.issue("p9", "admin")
    async with httpx.AsyncClient(base_url=gateway) as http:
        mine = await http.get("/volume/v3/p1/volumes", headers={"X-Auth-Token": member})
        theirs = await http.get("/volume/v3/p2/volumes", headers={"X-Auth-Token": member})
        by_admin = await http.get("/volume/v3/p2/volumes", headers={"X-Auth-Token": admin})
    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert theirs.json() == {
        "itemNotFound": {"code": 404, "message": "The resource could not be found."}
    }
    assert by_admin.status_code == 200


async def test_actions_are_authorized_by_the_action_in_the_body(
    gateway: str, validator: FakeTokenValidator
) -> None:
    member, admin = validator.issue("p1", "member"), validator.issue("p1", "admin")
    path = "/compute/v2.1/servers/s1/action"
    async with httpx.AsyncClient(base_url=gateway) as http:

        async def act(token: str, content: bytes) -> httpx.Response:
            return await http.post(
                path,
                content=content,
                headers={"X-Auth-Token": token, "Content-Type": "application/json"},
            )

        stop = await act(member, b'{"os-stop": null}')
        assert stop.status_code == 200, stop.text
        assert stop.json()["body"] == '{"os-stop": null}'
        reset = await act(member, b'{"os-resetState": {"state": "error"}}')
        assert reset.status_code == 403
        assert reset.json()["forbidden"]["code"] == 403
        assert (await act(admin, b'{"os-resetState": {"state": "error"}}')).status_code == 200
        assert (await act(member, b'{"os-stop": null, "reboot": {}}')).status_code == 400
        assert (await act(member, b"not json")).status_code == 400
        assert (await act(member, b'{"os-fly": null}')).status_code == 403


async def test_service_faults_and_status_pass_through(
    gateway: str, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "reader")
    async with httpx.AsyncClient(base_url=gateway) as http:
        reply = await http.get("/compute/v2.1/servers/nope", headers={"X-Auth-Token": token})
    assert reply.status_code == 404
    # The backend answers in its own shape (neutron's here): the gateway does not rewrite it.
    assert reply.json()["NeutronError"]["message"] == "Server nope could not be found."


async def test_location_pointing_at_a_replica_is_rewritten(
    gateway: str, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "member")
    async with httpx.AsyncClient(base_url=gateway) as http:
        reply = await http.post(
            "/network/v2.0/networks", headers={"X-Auth-Token": token}, json={"network": {}}
        )
    assert reply.status_code == 201
    assert reply.headers["location"] == f"{PUBLIC_URL}/network/v2.0/networks/n1"
    assert reply.json()["body"] == '{"network":{}}'


async def test_round_robin_over_replicas(gateway: str, validator: FakeTokenValidator) -> None:
    token = validator.issue("p1", "reader")
    async with httpx.AsyncClient(base_url=gateway) as http:
        replicas = [
            (await http.get("/network/v2.0/networks", headers={"X-Auth-Token": token})).json()[
                "replica"
            ]
            for _ in range(6)
        ]
    assert sorted(set(replicas)) == ["b0", "b1"]
    assert replicas.count("b0") == replicas.count("b1") == 3


async def test_upload_is_streamed_not_buffered(
    gateway: str, backends: Backends, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "member")
    gate = backends.gates[0].upload_started
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        first = b"1" * CHUNK
        digest.update(first)
        yield first
        # A buffering proxy would never let the service see this chunk before the rest.
        await wait_until(gate.is_set, timeout=10)
        for _ in range(63):
            chunk = uuid.uuid4().bytes * (CHUNK // 16)
            digest.update(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        reply = await http.put(
            "/image/v2/images/i1/file",
            content=body(),
            headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
        )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"size": 64 * CHUNK, "sha256": digest.hexdigest(), "replica": "b0"}


async def test_download_is_streamed_and_stops_when_the_client_leaves(
    gateway: str, backends: Backends, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "reader")
    gates = backends.gates[0]
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        headers = {"X-Auth-Token": token}
        async with http.stream("GET", "/image/v2/images/i1/file", headers=headers) as reply:
            assert reply.status_code == 200
            chunks = reply.aiter_raw()
            received = 0
            while received < CHUNK:
                received += len(await anext(chunks))
            # The rest waits on this gate: the first chunk came through on its own.
            gates.download_release.set()
            async for chunk in chunks:
                received += len(chunk)
        assert received == 16 * CHUNK

        gates.reset()
        async with http.stream("GET", "/image/v2/images/i1/file", headers=headers) as reply:
            async for _chunk in reply.aiter_raw():
                break
        # The client left mid-download: the proxy must let go of the service's stream.
        await wait_until(gates.download_closed.is_set, timeout=10)


async def test_unconfigured_service_is_404(
    backends: Backends, validator: FakeTokenValidator
) -> None:
    settings = _settings(backends, volume_urls=[])
    token = validator.issue("p1", "admin")
    with serve(build_gateway(settings, validator, backends.signer)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            reply = await http.get("/volume/v3/p1/volumes", headers={"X-Auth-Token": token})
            assert reply.status_code == 404
            assert reply.json()["itemNotFound"]["code"] == 404
            # The gateway's own routes are untouched by the proxy.
            assert (await http.get("/healthz")).status_code == 200


async def test_a_dead_replica_is_skipped(backends: Backends, validator: FakeTokenValidator) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = _settings(backends, network_urls=[dead, backends.urls[0]])
    token = validator.issue("p1", "member")
    with serve(build_gateway(settings, validator, backends.signer)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for method in ("GET", "POST", "GET", "POST"):
                reply = await http.request(
                    method, "/network/v2.0/networks", headers={"X-Auth-Token": token}, json={}
                )
                assert reply.status_code in (200, 201), reply.text
                assert reply.json()["replica"] == "b0"


async def test_all_replicas_down_is_a_quick_503(
    backends: Backends, validator: FakeTokenValidator
) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    settings = _settings(backends, network_urls=dead)
    token = validator.issue("p1", "member")
    with serve(build_gateway(settings, validator, backends.signer)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(3):
                started = time.monotonic()
                reply = await http.get("/network/v2.0/networks", headers={"X-Auth-Token": token})
                assert time.monotonic() - started < 2.5
                assert reply.status_code == 503
                assert reply.json()["NeutronError"]["type"] == "HTTPServiceUnavailable"


async def test_a_request_already_sent_is_retried_only_when_idempotent(
    backends: Backends, validator: FakeTokenValidator
) -> None:
    accepted: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await reader.readuntil(b"\r\n\r\n")  # the request went out; the replica dies
        writer.close()

    dropper = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = dropper.sockets[0].getsockname()[1]
    settings = _settings(backends, network_urls=[f"http://127.0.0.1:{port}", backends.urls[1]])
    token = validator.issue("p1", "member")
    headers = {"X-Auth-Token": token}
    try:
        with serve(build_gateway(settings, validator, backends.signer)) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                # Round-robin: requests 1 and 3 go to the dropping replica first.
                get = await http.get("/network/v2.0/networks", headers=headers)
                assert get.status_code == 200 and get.json()["replica"] == "b1"
                put = await http.put("/network/v2.0/networks/n1", headers=headers, json={})
                assert put.status_code == 200
                post = await http.post("/network/v2.0/networks", headers=headers, json={})
                assert post.status_code == 502
                assert post.json()["NeutronError"]["type"] == "HTTPBadGateway"
    finally:
        dropper.close()
        await dropper.wait_closed()
    assert len(accepted) >= 2


async def _raw_get(base_url: str, raw_path: str, token: str) -> int:
    """The status of a GET sent byte for byte (HTTP clients normalise ``..`` away)."""
    host, port = httpx.URL(base_url).host, httpx.URL(base_url).port
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {raw_path} HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: {token}\r\n"
    writer.write(f"{request}Connection: close\r\n\r\n".encode())
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def test_paths_a_replica_could_resolve_differently_are_refused(
    gateway: str, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "admin")
    assert await _raw_get(gateway, "/network/v2.0/networks", token) == 200
    for raw in ("/network/v2.0/networks/../agents", "/%6Eetwork/v2.0/networks"):
        assert await _raw_get(gateway, raw, token) == 404, raw


async def test_an_oversized_action_body_is_refused(
    gateway: str, validator: FakeTokenValidator
) -> None:
    token = validator.issue("p1", "admin")
    body = b'{"os-stop": "' + b"x" * (128 * 1024) + b'"}'
    async with httpx.AsyncClient(base_url=gateway) as http:
        reply = await http.post(
            "/compute/v2.1/servers/s1/action", content=body, headers={"X-Auth-Token": token}
        )
    assert reply.status_code == 413
    assert reply.json()["overLimit"]["code"] == 413


def test_the_proxy_is_the_outermost_layer(backends: Backends) -> None:
    # The gateway's identity and idempotency layers are for its own API: a proxied POST with
    # an Idempotency-Key must reach the service, which keeps keys per project.
    app = build_gateway(_settings(backends), FakeTokenValidator(), backends.signer)
    assert app.user_middleware[0].cls is ProxyMiddleware


async def test_a_silent_replica_is_a_504_at_the_read_deadline(
    backends: Backends, validator: FakeTokenValidator
) -> None:
    done = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # takes the request, never answers (a frozen process)
        await done.wait()
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    settings = _settings(backends, network_urls=[f"http://127.0.0.1:{port}"])
    token = validator.issue("p1", "member")
    try:
        with serve(build_gateway(settings, validator, backends.signer, read_timeout_s=0.5)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                started = time.monotonic()
                reply = await http.get("/network/v2.0/networks", headers={"X-Auth-Token": token})
                assert time.monotonic() - started < 3
                assert reply.status_code == 504
                assert reply.json()["NeutronError"]["type"] == "HTTPGatewayTimeout"
    finally:
        done.set()
        silent.close()
        await silent.wait_closed()
