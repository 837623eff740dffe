"""Idempotency-Key on a tiny create API, on SQLite and PostgreSQL: replay, conflicts, races."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, MetaData, String, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from common_rpc.chassis.faults import nova_fault
from common_rpc.chassis.idempotency import IdempotencyMiddleware, purge_expired
from common_rpc.context import RequestContext, reset_context, set_context
from common_rpc.tables import idempotency_keys

widgets = Table(
    "idem_widgets",
    MetaData(),
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
)

Sessions = async_sessionmaker[AsyncSession]


class WidgetIn(BaseModel):
    name: str


class WidgetCreate(BaseModel):
    widget: WidgetIn


class ProjectFromHeader:
    """Stands in for IdentityMiddleware: the caller's project comes from X-Project."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        project = dict(scope.get("headers", [])).get(b"x-project")
        token = set_context(RequestContext(project_id=project.decode() if project else None))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_context(token)


class Behaviour:
    """What the next creates do: wait at a gate, fail, or crash."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.fail_next = 0
        self.crash_next = 0
        self.delay = 0.0


def build_app(sessions: Sessions, behaviour: Behaviour) -> FastAPI:
    app = FastAPI(
        middleware=[
            Middleware(ProjectFromHeader),
            Middleware(IdempotencyMiddleware, sessions=sessions, fault_formatter=nova_fault),
        ]
    )

    @app.post("/widgets", status_code=201)
    async def create_widget(body: WidgetCreate) -> dict:
        behaviour.entered.set()
        if behaviour.gate is not None:
            await behaviour.gate.wait()
        await asyncio.sleep(behaviour.delay)
        if behaviour.crash_next:
            behaviour.crash_next -= 1
            raise RuntimeError("backend exploded")
        if behaviour.fail_next:
            behaviour.fail_next -= 1
            return JSONResponse({"overLimit": {"code": 503, "message": "busy"}}, status_code=503)
        widget_id = str(uuid.uuid4())
        async with sessions.begin() as session:
            await session.execute(
                insert(widgets).values(id=widget_id, project_id="p", name=body.widget.name)
            )
        return {"widget": {"id": widget_id, "name": body.widget.name}}

    @app.post("/gadgets", status_code=201)
    async def create_gadget(body: WidgetCreate) -> dict:
        return {"gadget": {"name": body.widget.name}}

    return app


@pytest.fixture
async def db(sessions: Sessions) -> Sessions:
    async with sessions() as session:
        conn = await session.connection()
        await conn.run_sync(widgets.metadata.create_all)
        await session.commit()
    return sessions


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour()


@pytest.fixture
async def client(db: Sessions, behaviour: Behaviour):
    transport = httpx.ASGITransport(app=build_app(db, behaviour), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


def post(client: httpx.AsyncClient, key: str | bytes | None, name: str = "w1", **kw):
    headers = {"X-Project": kw.pop("project", "p1")}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(kw.pop("path", "/widgets"), json={"widget": {"name": name}}, headers=headers)


async def count_widgets(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(widgets)) or 0)


async def test_replay_returns_the_original_response_and_creates_nothing(client, db):
    first = await post(client, "boot-42")
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers

    again = await post(client, "boot-42")
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    for name in ("content-type", "content-length"):
        assert again.headers[name] == first.headers[name]
    assert await count_widgets(db) == 1


async def test_same_key_for_another_request_is_409(client, db):
    assert (await post(client, "k1", name="w1")).status_code == 201

    other_body = await post(client, "k1", name="w2")
    other_path = await post(client, "k1", name="w1", path="/gadgets")
    for resp in (other_body, other_path):
        assert resp.status_code == 409
        message = resp.json()["conflictingRequest"]["message"]
        assert "already used for another request" in message
    assert await count_widgets(db) == 1


async def test_concurrent_duplicates_create_exactly_one(client, db, behaviour):
    behaviour.delay = 0.05  # keep the first one in progress while the others arrive

    responses = await asyncio.gather(*(post(client, "burst") for _ in range(10)))

    created = [r for r in responses if r.status_code == 201]
    assert created, [r.status_code for r in responses]
    assert {r.content for r in created} == {created[0].content}
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1
    for r in responses:
        assert r.status_code in (201, 409), r.text
    assert await count_widgets(db) == 1


async def test_a_request_in_progress_answers_409(client, db, behaviour):
    behaviour.gate = asyncio.Event()
    first = asyncio.create_task(post(client, "slow"))
    await asyncio.wait_for(behaviour.entered.wait(), 5)

    second = await post(client, "slow")
    assert second.status_code == 409
    assert "in progress" in second.json()["conflictingRequest"]["message"]

    behaviour.gate.set()
    assert (await first).status_code == 201
    assert (await post(client, "slow")).headers["idempotent-replayed"] == "true"
    assert await count_widgets(db) == 1


async def test_a_failed_first_attempt_may_be_retried_with_the_same_key(client, db, behaviour):
    behaviour.fail_next = 1
    behaviour.crash_next = 1

    crashed = await post(client, "retry-me")
    assert crashed.status_code == 500
    failed = await post(client, "retry-me")
    assert failed.status_code == 503
    assert await count_widgets(db) == 0

    retried = await post(client, "retry-me")
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert await count_widgets(db) == 1


@pytest.mark.parametrize(
    "key", [b"", b"x" * 65, "cl\u00e9".encode(), b"tab\there", b"nul\x00"], ids=repr
)
async def test_a_bad_key_is_400(client, db, key):
    resp = await post(client, key)
    assert resp.status_code == 400
    assert "Idempotency-Key" in resp.json()["badRequest"]["message"]
    assert await count_widgets(db) == 0


async def test_keys_are_kept_per_project(client, db):
    a = await post(client, "same", project="p1")
    b = await post(client, "same", project="p2")
    assert a.status_code == b.status_code == 201
    assert a.content != b.content
    assert await count_widgets(db) == 2


async def test_requests_without_a_key_or_not_post_pass_through(client, db):
    assert (await post(client, None)).status_code == 201
    assert (await post(client, None)).status_code == 201
    resp = await client.get("/widgets", headers={"Idempotency-Key": "x" * 100})
    assert resp.status_code == 405  # not a POST: the key is not looked at
    assert await count_widgets(db) == 2


async def test_an_expired_key_is_replaced_and_purged(client, db):
    assert (await post(client, "old")).status_code == 201
    day_ago = datetime.now(UTC) - timedelta(hours=25)
    async with db.begin() as session:
        await session.execute(update(idempotency_keys).values(created_at=day_ago))

    fresh = await post(client, "old")
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert await count_widgets(db) == 2

    async with db.begin() as session:
        await session.execute(
            insert(idempotency_keys).values(
                project_id="p9",
                key="stale",
                method_path="POST /widgets",
                body_hash="0" * 64,
                created_at=day_ago,
            )
        )
    assert await purge_expired(db) == 1
    async with db() as session:
        keys = (await session.execute(select(idempotency_keys.c.key))).scalars().all()
    assert keys == ["old"]


async def test_replayed_body_is_the_stored_bytes(client, db):
    first = await post(client, "bytes")
    async with db() as session:
        row = (await session.execute(select(idempotency_keys))).one()
    assert row.status_code == 201
    assert row.response_body == first.content
    assert orjson.loads(row.response_body)["widget"]["name"] == "w1"
