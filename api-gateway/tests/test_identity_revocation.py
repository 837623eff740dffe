"""Revocation reaches every service within the bound: two gateway replicas on one database,
a real chassis service behind them verifying the signed identity per request. A change made
through replica A (role removed, user disabled, password changed, user deleted) ends the
user's access through replica B within ``token_cache_s`` (``domain/tokens.py``), and at
once through A; an open event stream on B ends within its recheck plus that."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter
from gateway_fixtures import LiveServer
from identity_fixtures import ADMIN_PASSWORD, PUBLIC_URL, build_app, gateway_settings, password_auth
from pydantic_settings import SettingsConfigDict
from test_identity_admin import ok

from common_rpc import current_context
from common_rpc.chassis.app import make_app
from common_rpc.chassis.faults import neutron_fault
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.settings import ServiceSettings

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)

V3 = "/identity/v3"
NETWORKS = "/network/v2.0/networks"
CACHE_S = 1.0
# What a loaded test machine may add to the bound (requests of ~50 ms, polled every 50 ms).
SLACK_S = 1.0


class NetworkServiceSettings(ServiceSettings):
    service_name: ClassVar[str] = "revocation-backend"
    model_config = SettingsConfigDict(env_prefix="REVOCATION_BACKEND_", extra="ignore")


def network_service(data_dir: Path) -> Any:
    """A chassis service as network-svc is one: it trusts only the gateway-signed identity."""
    router = APIRouter()

    @router.get("/v2.0/networks")
    async def networks() -> dict[str, Any]:
        ctx = current_context()
        return {"networks": [], "user_id": ctx.user_id, "roles": sorted(ctx.roles)}

    settings = NetworkServiceSettings(data_dir=data_dir, log_json=False)
    runtime = ServiceRuntime(settings, database=False)
    return make_app(
        settings, runtime, title="net", version="1", routers=[router], fault_formatter=neutron_fault
    )


class Cloud:
    def __init__(self, a: httpx.AsyncClient, b: httpx.AsyncClient) -> None:
        self.a, self.b = a, b
        self.admin: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        self.project = ""

    async def start(self) -> None:
        reply = await self.a.post(
            f"{V3}/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD, "admin")
        )
        self.admin = {"X-Auth-Token": ok(reply, 201) and reply.headers["X-Subject-Token"]}
        roles = ok(await self.a.get(f"{V3}/roles", headers=self.admin))["roles"]
        self.roles = {r["name"]: r["id"] for r in roles}
        projects = ok(await self.a.get(f"{V3}/projects?name=demo", headers=self.admin))
        self.project = projects["projects"][0]["id"]

    def grant(self, user_id: str, role: str) -> str:
        return f"{V3}/projects/{self.project}/users/{user_id}/roles/{self.roles[role]}"

    async def member(self, name: str, *roles: str) -> tuple[str, dict[str, str]]:
        body = {"user": {"name": name, "password": f"{name}-pw"}}
        user_id = ok(await self.a.post(f"{V3}/users", json=body, headers=self.admin), 201)
        user_id = user_id["user"]["id"]
        for role in roles:
            ok(await self.a.put(self.grant(user_id, role), headers=self.admin), 204)
        reply = await self.b.post(
            f"{V3}/auth/tokens", json=password_auth(name, f"{name}-pw", "demo")
        )
        return user_id, {"X-Auth-Token": ok(reply, 201) and reply.headers["X-Subject-Token"]}


async def refused_within(http: httpx.AsyncClient, token: dict[str, str], bound_s: float) -> float:
    """Seconds until the service is no longer reached with ``token`` (401 at the door)."""
    started = time.monotonic()
    while (reply := await http.get(NETWORKS, headers=token)).status_code == 200:
        assert time.monotonic() - started < bound_s, "still served after the bound"
        await asyncio.sleep(0.05)
    assert reply.status_code == 401, reply.text
    return time.monotonic() - started


@pytest.fixture
def replicas(tmp_path: Path, db_url: str) -> Iterator[tuple[str, str]]:
    service = LiveServer(network_service(tmp_path))
    service.start()
    settings = gateway_settings(tmp_path, db_url, PUBLIC_URL).model_copy(
        update={"network_urls": [service.url], "token_cache_s": CACHE_S}
    )
    servers = [LiveServer(build_app(settings)) for _ in range(2)]
    try:
        for server in servers:  # one after the other: the first one migrates
            server.start()
        yield servers[0].url, servers[1].url
    finally:
        for server in (*servers, service):
            if server.thread.is_alive():
                server.stop()


async def test_revocations_reach_the_service_within_the_bound(replicas: tuple[str, str]) -> None:
    async with (
        httpx.AsyncClient(base_url=replicas[0]) as a,
        httpx.AsyncClient(base_url=replicas[1], timeout=30) as b,
    ):
        cloud = Cloud(a, b)
        await cloud.start()

        async def remove_role(user_id: str) -> None:
            ok(await a.delete(cloud.grant(user_id, "member"), headers=cloud.admin), 204)

        async def disable(user_id: str) -> None:
            body = {"user": {"enabled": False}}
            ok(await a.patch(f"{V3}/users/{user_id}", json=body, headers=cloud.admin))

        async def change_password(user_id: str) -> None:
            body = {"user": {"password": "another-pw"}}
            ok(await a.patch(f"{V3}/users/{user_id}", json=body, headers=cloud.admin))

        async def delete(user_id: str) -> None:
            ok(await a.delete(f"{V3}/users/{user_id}", headers=cloud.admin), 204)

        causes: dict[str, Callable[[str], Awaitable[None]]] = {
            "role_removed": remove_role,
            "disabled": disable,
            "password_changed": change_password,
            "deleted": delete,
        }
        measured: dict[str, float] = {}
        for name, cause in causes.items():
            user_id, token = await cloud.member(f"rv-{name}", "member")
            for http in (a, b):  # served, and now remembered as valid by both replicas
                seen = ok(await http.get(NETWORKS, headers=token))
                assert seen["user_id"] == user_id and seen["roles"] == ["member", "reader"]
            await cause(user_id)
            # The replica that made the change refuses at once.
            assert (await a.get(NETWORKS, headers=token)).status_code == 401
            measured[name] = await refused_within(b, token, CACHE_S + SLACK_S)
        print(f"revocation through the other replica, token_cache_s={CACHE_S}: {measured}")

        # A demotion: the service sees the smaller roles within the bound (re-signed).
        user_id, token = await cloud.member("rv-demoted", "admin")
        assert "admin" in ok(await b.get(NETWORKS, headers=token))["roles"]
        ok(await a.put(cloud.grant(user_id, "member"), headers=cloud.admin), 204)
        ok(await a.delete(cloud.grant(user_id, "admin"), headers=cloud.admin), 204)
        started = time.monotonic()
        while "admin" in ok(await b.get(NETWORKS, headers=token))["roles"]:
            assert time.monotonic() - started < CACHE_S + SLACK_S
            await asyncio.sleep(0.05)
        assert ok(await b.get(NETWORKS, headers=token))["roles"] == ["member", "reader"]


async def test_an_open_event_stream_ends_after_a_role_removal(replicas: tuple[str, str]) -> None:
    async with (
        httpx.AsyncClient(base_url=replicas[0]) as a,
        httpx.AsyncClient(base_url=replicas[1], timeout=30) as b,
    ):
        cloud = Cloud(a, b)
        await cloud.start()
        user_id, token = await cloud.member("rv-stream", "member")
        async with b.stream("GET", "/v1/events", headers=token) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await anext(lines) == ": connected"
            ok(await a.delete(cloud.grant(user_id, "member"), headers=cloud.admin), 204)
            started = time.monotonic()
            bound = max(CACHE_S, 1.0) + CACHE_S + SLACK_S
            async with asyncio.timeout(bound):
                while await anext(lines) != "event: error":
                    pass
                assert "no longer valid" in await anext(lines)
            ended = time.monotonic() - started
        print(f"event stream ended {ended:.2f} s after the role removal (bound {bound} s)")
