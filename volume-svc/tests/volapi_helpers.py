"""Shared by the volume tests: the API and a volume-agent on their own topics and files.

Every test gets a unique host name, RPC topic, file prefix and IQN prefix, so tests do
not see each other's volumes or targets (nor another service's ``volume`` topic).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from common_rpc import RequestContext, RpcClient
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.context import use_context
from common_rpc.rpc import queue_name
from common_rpc.tables import outbox
from common_rpc.testing import running_app, signing_keys, wait_for
from volume_svc.agent.main import VolumeAgent, build
from volume_svc.agent.settings import AgentSettings
from volume_svc.app import create_app
from volume_svc.settings import VolumeSettings

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN = RequestContext(project_id="admin-project", roles=frozenset({"admin"}))


@dataclass
class Names:
    """One test's unique names for every host object and queue it creates."""

    tag: str

    @classmethod
    def new(cls) -> Names:
        return cls("t" + uuid.uuid4().hex[:10])

    @property
    def host(self) -> str:
        return f"st-{self.tag}"

    @property
    def topic(self) -> str:
        return f"volume-{self.tag}"

    @property
    def prefix(self) -> str:
        return f"{self.tag}-"

    @property
    def iqn_prefix(self) -> str:
        return f"iqn.2010-10.org.stackling.{self.tag}"

    def initiator(self, name: str = "c1") -> str:
        return f"iqn.2010-10.org.stackling.{self.tag}:{name}"


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    signer: IdentitySigner
    names: Names
    agent: VolumeAgent | None = None

    @property
    def rpc(self) -> RpcClient:
        return self.app.state.runtime.rpc

    def as_(self, project: str, *roles: str) -> dict[str, str]:
        ctx = RequestContext(project_id=project, roles=frozenset(roles or ("member",)))
        return {IDENTITY_HEADER: self.signer.sign(ctx)}

    async def post(self, project: str, path: str, body: Any, *roles: str) -> httpx.Response:
        url = f"/v3/{project}{path}"
        return await self.http.post(url, json=body, headers=self.as_(project, *roles))

    async def get(self, project: str, path: str, *roles: str) -> httpx.Response:
        return await self.http.get(f"/v3/{project}{path}", headers=self.as_(project, *roles))

    async def put(self, project: str, path: str, body: Any, *roles: str) -> httpx.Response:
        url = f"/v3/{project}{path}"
        return await self.http.put(url, json=body, headers=self.as_(project, *roles))

    async def delete(self, project: str, path: str, *roles: str) -> httpx.Response:
        return await self.http.delete(f"/v3/{project}{path}", headers=self.as_(project, *roles))

    async def wait_status(
        self, project: str, kind: str, item_id: str, status: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the volume/snapshot has ``status`` (or is gone, for ``deleted``)."""
        singular = kind[:-1]
        async with asyncio.timeout(timeout):
            while True:
                resp = await self.get(project, f"/{kind}/{item_id}")
                if resp.status_code == 404 and status == "deleted":
                    return {}
                assert resp.status_code == 200, resp.text
                body = resp.json()[singular]
                if body["status"] == status:
                    return body
                assert not body["status"].startswith("error"), body
                await asyncio.sleep(0.05)

    async def volume(self, project: str, size: int = 1, **attrs: Any) -> dict[str, Any]:
        resp = await self.post(project, "/volumes", {"volume": {"size": size, **attrs}})
        assert resp.status_code == 202, resp.text
        return await self.wait_status(project, "volumes", resp.json()["volume"]["id"], "available")

    async def snapshot(self, project: str, volume_id: str, **attrs: Any) -> dict[str, Any]:
        body = {"snapshot": {"volume_id": volume_id, **attrs}}
        resp = await self.post(project, "/snapshots", body)
        assert resp.status_code == 202, resp.text
        snap_id = resp.json()["snapshot"]["id"]
        return await self.wait_status(project, "snapshots", snap_id, "available")

    async def call(self, project: str, method: str, **args: Any) -> Any:
        """An RPC on the API's topic as a member of ``project`` (what compute does)."""
        ctx = RequestContext(project_id=project, roles=frozenset({"member"}))
        with use_context(ctx):
            return await self.rpc.call(self.names.topic, method, timeout=30, **args)

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(event type, payload) of every event written so far, in order."""
        async with self.app.state.runtime.sessions() as session:
            rows = await session.execute(select(outbox.c.body).order_by(outbox.c.created_at))
            out = []
            for (body,) in rows:
                event = json.loads(body)
                out.append((event["event_type"], event["payload"]))
            return out

    async def audit(self) -> dict[str, Any]:
        with use_context(ADMIN):
            return await self.rpc.call(self.names.topic, "audit", timeout=30)


def agent_settings(tmp_path: Path, names: Names, **extra: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "host": names.host,
        "agent_api_topic": names.topic,
        "agent_target_helper": "fake",
        "agent_name_prefix": names.prefix,
        "agent_iqn_prefix": names.iqn_prefix,
        "agent_reconcile_interval": 3600.0,
        "log_json": False,
    }
    return AgentSettings(**(values | extra))


@asynccontextmanager
async def volume_api(
    tmp_path: Path,
    *,
    names: Names | None = None,
    agent: dict[str, Any] | None = None,
    with_agent: bool = True,
    **settings: Any,
) -> AsyncIterator[Api]:
    """The API (and, unless told otherwise, an agent with the fake target) for one test."""
    names = names or Names.new()
    signer, _public = signing_keys(tmp_path / "keys")
    app = create_app(
        VolumeSettings(
            data_dir=tmp_path,
            host=f"api-{names.tag}",
            backend_host=names.host,
            rpc_topic=names.topic,
            agent_timeout=20.0,
            **settings,
        )
    )
    try:
        async with running_app(app) as http:
            # Events stay in the outbox, where the tests read what each change wrote.
            relay = app.state.runtime.relay
            assert relay is not None
            await relay.stop()
            api = Api(app, http, signer, names)
            if with_agent:
                api.agent = build(agent_settings(tmp_path, names, **(agent or {})))
                await api.agent.start()
                # Tests start on a reconciled host: a first round that ran late would remove
                # the strays a test makes on purpose.
                reconciler = api.agent.reconciler

                async def reconciled() -> bool:
                    return reconciler.rounds >= 1

                await wait_for(reconciled, timeout=30)
            try:
                yield api
            finally:
                await app.state.deps.tasks.drain()
                if api.agent is not None:
                    await api.agent.stop()
    finally:
        await delete_queues(app.state.settings.amqp_url, names.topic, f"volume.{names.host}")


async def delete_queues(url: str, *topics: str) -> None:
    """The test's RPC queues are durable: remove them, or every run would leave some."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for topic in topics:
            await channel.queue_delete(queue_name(topic))


@asynccontextmanager
async def temp_postgres() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (skips without one)."""
    name = f"stk_vol_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
