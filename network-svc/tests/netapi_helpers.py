"""Shared by the network API tests: a running app on its own database and signed callers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from common_rpc import Broker, MessagingConfig, RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.testing import running_app, signing_keys
from network_svc.app import create_app
from network_svc.settings import NetworkSettings


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    signer: IdentitySigner

    @property
    def topic(self) -> str:
        """The RPC topic this app serves (what compute calls ``network``)."""
        return str(self.app.state.settings.rpc_topic)

    def as_(self, project: str, *roles: str) -> dict[str, str]:
        ctx = RequestContext(project_id=project, roles=frozenset(roles or ("member",)))
        return {IDENTITY_HEADER: self.signer.sign(ctx)}

    async def post(self, project: str, path: str, body: dict[str, Any], *roles: str) -> Any:
        return await self.http.post(path, json=body, headers=self.as_(project, *roles))

    async def get(self, project: str, path: str, *roles: str) -> Any:
        return await self.http.get(path, headers=self.as_(project, *roles))

    async def put(self, project: str, path: str, body: dict[str, Any], *roles: str) -> Any:
        return await self.http.put(path, json=body, headers=self.as_(project, *roles))

    async def delete(self, project: str, path: str, *roles: str) -> Any:
        return await self.http.delete(path, headers=self.as_(project, *roles))

    async def network(self, project: str, **attrs: Any) -> dict[str, Any]:
        resp = await self.post(project, "/v2.0/networks", {"network": {"name": "n", **attrs}})
        assert resp.status_code == 201, resp.text
        return resp.json()["network"]

    async def subnet(self, project: str, network_id: str, cidr: str, **attrs: Any) -> Any:
        body = {"subnet": {"network_id": network_id, "cidr": cidr, "ip_version": 4, **attrs}}
        resp = await self.post(project, "/v2.0/subnets", body)
        assert resp.status_code == 201, resp.text
        return resp.json()["subnet"]

    async def port(self, project: str, network_id: str, **attrs: Any) -> dict[str, Any]:
        body = {"port": {"network_id": network_id, **attrs}}
        resp = await self.post(project, "/v2.0/ports", body)
        assert resp.status_code == 201, resp.text
        return resp.json()["port"]


@asynccontextmanager
async def network_api(tmp_path: Path, **settings: Any) -> AsyncIterator[Api]:
    """The app on its own RPC topic, so runs side by side on one broker never cross."""
    signer, _public = signing_keys(tmp_path / "keys")
    settings.setdefault("rpc_topic", f"nettest-{uuid.uuid4().hex[:10]}")
    app = create_app(NetworkSettings(data_dir=tmp_path, **settings))
    try:
        async with running_app(app) as http:
            yield Api(app, http, signer)
    finally:
        await delete_queue(app.state.runtime.broker.config.url, f"rpc.{settings['rpc_topic']}")


async def delete_queue(url: str, name: str) -> None:
    broker = Broker(MessagingConfig(url=url), name="nettest-cleanup")
    try:
        channel = await broker.channel(url)
        await channel.queue_delete(name)
    finally:
        await broker.close()


def fault_type(resp: httpx.Response) -> str:
    return str(resp.json()["NeutronError"]["type"])
