"""make_app on a real runtime (SQLite or PostgreSQL, RabbitMQ): health, identity, faults, logs."""

from __future__ import annotations

import io
import logging
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from chassis_fixtures import *  # noqa: F403 (pytest finds fixtures by module name)
from chassis_fixtures import WidgetSettings, pg_admin
from fastapi import APIRouter, FastAPI, WebSocket
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from common_rpc import NotFound, RequestContext, current_context
from common_rpc.chassis.app import make_app
from common_rpc.chassis.faults import keystone_fault, neutron_fault, nova_fault
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.chassis.logging import configure_logging
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.testing import wait_for

CALLER = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"member"}))
REQUEST_ID = f"req-{uuid.uuid4()}"


class WidgetIn(BaseModel):
    name: str = Field(max_length=8)
    size: int


class WidgetCreate(BaseModel):
    widget: WidgetIn


router = APIRouter()


@router.get("/")
async def versions() -> dict:
    return {"versions": [{"id": "v1.0", "status": "CURRENT"}]}


@router.get("/widgets/{widget_id}")
async def show_widget(widget_id: str) -> dict:
    ctx = current_context()
    logging.getLogger("widgets.api").info("showing widget", extra={"widget_id": widget_id})
    return {
        "id": widget_id,
        "request_id": ctx.request_id,
        "project_id": ctx.project_id,
        "user_id": ctx.user_id,
        "roles": sorted(ctx.roles),
    }


@router.post("/widgets")
async def create_widget(body: WidgetCreate) -> dict:
    return body.model_dump()


@router.get("/missing")
async def missing() -> dict:
    raise NotFound("Widget w9 could not be found.")


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_json({"project_id": current_context().project_id})
    await ws.close()


@router.get("/boom")
async def boom() -> dict:
    raise RuntimeError("secret internals")


@pytest.fixture
async def runtime(
    tmp_path: Path,
    any_db_url: str,
    widget_migrations: Path,
    keypair: tuple[Path, Path],
) -> AsyncIterator[ServiceRuntime]:
    settings = WidgetSettings(
        data_dir=tmp_path, db_url=any_db_url, identity_public_key_path=keypair[1]
    )
    rt = ServiceRuntime(settings, migrations=widget_migrations)
    await rt.start()
    yield rt
    await rt.stop()


def build_app(runtime: ServiceRuntime, **kwargs) -> FastAPI:
    return make_app(
        runtime.settings,
        runtime,
        title="widgets",
        version="1.0",
        routers=[router],
        public_paths={"/"},
        **kwargs,
    )


@pytest.fixture
async def client(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://widgets") as c:
        yield c


@pytest.fixture
def auth(signer: IdentitySigner) -> dict[str, str]:
    return {IDENTITY_HEADER: signer.sign(CALLER), "X-Request-Id": REQUEST_ID}


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("widgets", "INFO", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    r = await client.get("/metrics")
    assert r.status_code == 200 and "stackling_http_request_seconds" in r.text


async def test_identity_required(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/widgets/w1")
    assert r.status_code == 401
    assert r.json()["unauthorized"]["code"] == 401
    r = await client.get("/widgets/w1", headers={IDENTITY_HEADER: "not-a-token"})
    assert r.status_code == 401 and "invalid identity" in r.json()["unauthorized"]["message"]
    # Public paths need no identity.
    assert (await client.get("/")).status_code == 200


async def test_context_visible_to_route(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/widgets/w1", headers=auth)
    assert r.status_code == 200
    assert r.json() == {
        "id": "w1",
        "request_id": REQUEST_ID,
        "project_id": "p1",
        "user_id": "u1",
        "roles": ["member"],
    }


async def test_request_id_echoed(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/widgets/w1", headers=auth)
    assert r.headers["x-request-id"] == REQUEST_ID
    assert r.headers["x-openstack-request-id"] == REQUEST_ID
    # The OpenStack header works too; a malformed id is replaced, never echoed.
    other = f"req-{uuid.uuid4()}"
    r = await client.get("/healthz", headers={"X-Openstack-Request-Id": other})
    assert r.headers["x-request-id"] == other
    r = await client.get("/healthz", headers={"X-Request-Id": "evil\nid"})
    assert r.headers["x-request-id"].startswith("req-") and r.headers["x-request-id"] != "evil\nid"
    # Refused requests carry it as well.
    r = await client.get("/widgets/w1", headers={"X-Request-Id": REQUEST_ID})
    assert r.status_code == 401 and r.headers["x-request-id"] == REQUEST_ID


async def test_validation_error_is_400(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.post("/widgets", headers=auth, json={"widget": {"name": "far too long"}})
    assert r.status_code == 400
    message = r.json()["badRequest"]["message"]
    assert "widget.name" in message and "widget.size: Field required" in message
    r = await client.post(
        "/widgets", headers={**auth, "Content-Type": "application/json"}, content=b"{"
    )
    assert r.json()["badRequest"]["message"] == "Invalid input for request body: JSON decode error"


async def test_rpc_error_and_unknown_route(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/missing", headers=auth)
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {"code": 404, "message": "Widget w9 could not be found."}}
    r = await client.get("/no/such/path", headers=auth)
    assert r.status_code == 404 and "itemNotFound" in r.json()
    r = await client.delete("/widgets/w1", headers=auth)
    assert r.status_code == 405 and "badMethod" in r.json() and "GET" in r.headers["allow"]


async def test_unexpected_error_is_generic_500(
    client: httpx.AsyncClient, auth: dict[str, str], log_stream: io.StringIO
) -> None:
    r = await client.get("/boom", headers=auth)
    assert r.status_code == 500
    assert r.headers["x-request-id"] == REQUEST_ID
    fault = r.json()["computeFault"]
    assert fault["code"] == 500 and REQUEST_ID in fault["message"]
    assert "secret internals" not in r.text and "Traceback" not in r.text
    logged = [orjson.loads(line) for line in log_stream.getvalue().splitlines()]
    error = next(line for line in logged if line["level"] == "ERROR")
    assert error["request_id"] == REQUEST_ID and "secret internals" in error["exception"]


async def test_log_lines_carry_request_id(
    client: httpx.AsyncClient, auth: dict[str, str], log_stream: io.StringIO
) -> None:
    await client.get("/widgets/w7", headers=auth)
    logged = [orjson.loads(line) for line in log_stream.getvalue().splitlines()]
    line = next(line for line in logged if line["message"] == "showing widget")
    assert (line["request_id"], line["project_id"], line["widget_id"]) == (REQUEST_ID, "p1", "w7")


async def test_metrics_use_route_templates(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await client.get("/widgets/some-id", headers=auth)
    text = (await client.get("/metrics")).text
    assert 'route="/widgets/{widget_id}",status="200"' in text
    assert "some-id" not in text


@pytest.mark.parametrize(
    ("formatter", "key"),
    [(neutron_fault, "NeutronError"), (keystone_fault, "error"), (nova_fault, "unauthorized")],
)
async def test_fault_formatter(runtime: ServiceRuntime, formatter, key: str) -> None:
    app = build_app(runtime, fault_formatter=formatter)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as c:
        body = (await c.get("/widgets/w1")).json()
    assert body == formatter(401, "The request you have made requires authentication.")
    assert list(body) == [key]


def test_fault_shapes() -> None:
    assert nova_fault(409, "in use") == {"conflictingRequest": {"code": 409, "message": "in use"}}
    assert nova_fault(413, "q") == {"overLimit": {"code": 413, "message": "q"}}
    assert list(nova_fault(502, "x")) == ["computeFault"]
    assert list(nova_fault(422, "x")) == ["badRequest"]
    assert neutron_fault(404, "gone") == {
        "NeutronError": {"type": "HTTPNotFound", "message": "gone", "detail": ""}
    }
    assert keystone_fault(403, "no") == {
        "error": {"code": 403, "title": "Forbidden", "message": "no"}
    }


async def test_missing_identity_key_is_503(runtime: ServiceRuntime, tmp_path: Path) -> None:
    runtime.settings.identity_public_key_path = tmp_path / "absent.pub"
    app = build_app(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as c:
        r = await c.get("/widgets/w1", headers={IDENTITY_HEADER: "x"})
    assert r.status_code == 503 and "serviceUnavailable" in r.json()


async def test_readyz_follows_the_database(
    tmp_path: Path,
    pg_db_url: str,
    widget_migrations: Path,
) -> None:
    runtime = ServiceRuntime(
        WidgetSettings(data_dir=tmp_path, db_url=pg_db_url), migrations=widget_migrations
    )
    await runtime.start()
    app = build_app(runtime)
    name = pg_db_url.rsplit("/", 1)[1]
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://w"
        ) as c:
            assert (await c.get("/readyz")).status_code == 200
            await pg_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            await pg_admin(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"] == {"database": "unavailable", "broker": "ok"}
            # Green again by itself once the database is back.
            await pg_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

            async def ready() -> bool:
                return (await c.get("/readyz")).status_code == 200

            await wait_for(ready, timeout=10)
    finally:
        await pg_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        await runtime.stop()


async def test_readyz_red_before_start(tmp_path: Path) -> None:
    runtime = ServiceRuntime(WidgetSettings(data_dir=tmp_path))
    app = build_app(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as c:
        r = await c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["broker"] == "unavailable"
    await runtime.stop()


def test_websockets_need_identity(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    settings = WidgetSettings(data_dir=tmp_path, identity_public_key_path=keypair[1])
    app = build_app(ServiceRuntime(settings, database=False))
    with warnings.catch_warnings():
        # Starlette deprecates its httpx-based test client; it is the one with websockets.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    client = TestClient(app)  # no lifespan: the route needs no runtime
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/stream"):
        pass
    assert refused.value.code == 1008
    token = IdentitySigner.from_file(keypair[0]).sign(CALLER)
    with client.websocket_connect("/stream", headers={IDENTITY_HEADER: token}) as ws:
        assert ws.receive_json() == {"project_id": "p1"}
