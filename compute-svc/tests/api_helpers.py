"""Shared by the compute API tests: a private RabbitMQ vhost, the app, signed callers.

Each test gets its own vhost on the machine's RabbitMQ, so its ``compute`` and ``network``
topics never meet another test run's; the vhost is removed afterwards, also on failure.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.testing import running_app, signing_keys
from compute_svc.app import create_app
from compute_svc.settings import ComputeSettings

ADMIN = ("admin", "member", "reader")


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def private_vhost() -> Iterator[str]:
    """An AMQP URL on a fresh vhost ``sltest-<hex>``, deleted when the block ends."""
    name = f"sltest-{uuid.uuid4().hex[:10]}"
    _ctl("add_vhost", name)
    try:
        _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        _ctl("delete_vhost", name)


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    signer: IdentitySigner

    def as_(self, project: str, *roles: str, user: str | None = None) -> dict[str, str]:
        ctx = RequestContext(
            project_id=project,
            user_id=user or f"user-{project}",
            roles=frozenset(roles or ("member", "reader")),
        )
        return {IDENTITY_HEADER: self.signer.sign(ctx)}

    async def call(
        self, method: str, project: str, path: str, body: Any = None, *roles: str, **kw: Any
    ) -> httpx.Response:
        headers = self.as_(project, *roles, user=kw.pop("user", None))
        headers |= kw.pop("headers", {})
        return await self.http.request(method, path, json=body, headers=headers, **kw)

    async def post(self, project: str, path: str, body: Any, *roles: str, **kw: Any) -> Any:
        return await self.call("POST", project, path, body, *roles, **kw)

    async def get(self, project: str, path: str, *roles: str, **kw: Any) -> Any:
        return await self.call("GET", project, path, None, *roles, **kw)

    async def put(self, project: str, path: str, body: Any, *roles: str, **kw: Any) -> Any:
        return await self.call("PUT", project, path, body, *roles, **kw)

    async def delete(self, project: str, path: str, *roles: str, **kw: Any) -> Any:
        return await self.call("DELETE", project, path, None, *roles, **kw)

    async def flavor(self, name: str = "m1.tiny", **attrs: Any) -> dict[str, Any]:
        body = {"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1, **attrs}}
        resp = await self.post("admin", "/v2.1/flavors", body, *ADMIN)
        assert resp.status_code == 200, resp.text
        return resp.json()["flavor"]

    async def image(self, project: str, data: bytes, **attrs: Any) -> dict[str, Any]:
        roles = attrs.pop("roles", ())
        body = {"name": "img", "disk_format": "qcow2", "container_format": "bare", **attrs}
        resp = await self.post(project, "/image/v2/images", body, *roles)
        assert resp.status_code == 201, resp.text
        image = resp.json()
        resp = await self.http.put(
            f"/image/v2/images/{image['id']}/file",
            content=data,
            headers=self.as_(project) | {"Content-Type": "application/octet-stream"},
        )
        assert resp.status_code == 204, resp.text
        return image


@asynccontextmanager
async def compute_api(tmp_path: Path, amqp_url: str, **settings: Any) -> AsyncIterator[Api]:
    signer, _public = signing_keys(tmp_path / "keys")
    app = create_app(
        ComputeSettings(data_dir=tmp_path, amqp_url=amqp_url, host="api-test", **settings)
    )
    async with running_app(app) as http:
        yield Api(app, http, signer)


# ---------------------------------------------------------------- a cloud for server tests


class FakeComputeAgent:
    """A fake compute-agent on ``compute.<host>``: records commands, runs no guest, and
    answers the typed contract (``compute_svc.contracts.AGENT``) as the real one does.

    ``fail_names`` makes spawn fail for servers with those names; ``spawn_delay`` makes
    spawns overlap in concurrency tests; the first ``stall_spawns`` spawns never answer
    (a reply lost with the broker, or a host that hangs); the volumes in ``refuse_detach``
    are never let go (every unplug request asked, then the host's error).
    """

    def __init__(self, runtime: Any, host: str) -> None:
        import asyncio

        from common_rpc import RpcRouter, RpcServer
        from common_rpc.errors import InternalError
        from common_rpc.methods import Empty
        from compute_svc import contracts as cc

        self.host = host
        # What each spawn was told, in its wire form (the desired state's JSON).
        self.spawned: dict[str, dict[str, Any]] = {}
        self.destroyed: list[str] = []
        self.power: list[tuple[str, str]] = []
        self.fail_names: set[str] = set()
        self.fail_destroy = False
        self.spawn_delay = 0.0
        self.stall_spawns = 0
        self.stall_s = 3600.0
        self.spawn_calls = 0
        # Volumes whose unplug the guest refuses for good; each detach's (attempts, timeout).
        self.refuse_detach: set[str] = set()
        self.unplugs: list[tuple[str, int | None, float | None]] = []
        self.detach_delay = 0.0  # a host slow to answer (its caller may give up first)
        router = RpcRouter()
        agent = self

        @router.implement(cc.SPAWN)
        async def spawn(deps: Any, request: cc.Spawn) -> cc.Spawned:
            server = request.server
            agent.spawn_calls += 1
            if agent.stall_spawns > 0:
                agent.stall_spawns -= 1
                await asyncio.sleep(agent.stall_s)  # no reply in time: the caller decides
            await asyncio.sleep(agent.spawn_delay)
            if server.name in agent.fail_names:
                raise InternalError("qemu refused to start")
            agent.spawned[server.server_id] = server.model_dump(mode="json")
            return cc.Spawned(
                server_id=server.server_id,
                domain=f"fake-{server.server_id}",
                power_state="running",
                observed_generation=server.generation,
            )

        @router.implement(cc.DESTROY)
        async def destroy(deps: Any, request: cc.ServerRef) -> cc.Destroyed:
            if agent.fail_destroy:
                raise InternalError("libvirt is not answering")
            agent.destroyed.append(request.server_id)
            agent.spawned.pop(request.server_id, None)
            return cc.Destroyed(server_id=request.server_id)

        @router.implement(cc.POWER)
        async def power(deps: Any, request: cc.Power) -> cc.DomainState:
            agent.power.append((request.action, request.server_id))
            states = {"stop": "shutdown", "suspend": "shutdown", "pause": "paused"}
            state = states.get(request.action, "running")
            return cc.DomainState(
                server_id=request.server_id,
                domain=f"fake-{request.server_id}",
                power_state=state,
            )

        @router.implement(cc.CONSOLE_OUTPUT)
        async def console_output(deps: Any, request: cc.ConsoleRequest) -> cc.ConsoleOutput:
            lines = [f"line {i} of {request.server_id}" for i in range(10)]
            length = request.length
            return cc.ConsoleOutput(output="\n".join(lines[-length:] if length else lines))

        @router.implement(cc.ATTACH_VOLUME)
        async def attach_volume(deps: Any, request: cc.AttachVolume) -> cc.VolumeAttached:
            agent.power.append(("attach", request.volume_id))
            return cc.VolumeAttached(
                server_id=request.server_id, volume_id=request.volume_id, device="/dev/vdb"
            )

        @router.implement(cc.DETACH_VOLUME)
        async def detach_volume(deps: Any, request: cc.DetachVolume) -> cc.VolumeDetached:
            volume_id, attempts, wait_s = request.volume_id, request.attempts, request.wait_s
            agent.power.append(("detach", volume_id))
            agent.unplugs.append((volume_id, attempts, wait_s))
            await asyncio.sleep(agent.detach_delay)
            if volume_id in agent.refuse_detach:  # a guest that never lets the disk go
                await asyncio.sleep((attempts or 1) * (wait_s or 0.1))
                raise InternalError(
                    f"Device detach failed for volume {volume_id}: the guest still holds it "
                    f"after {attempts} unplug requests."
                )
            return cc.VolumeDetached(server_id=request.server_id, volume_id=volume_id)

        @router.implement(cc.INVENTORY)
        async def inventory(deps: Any, request: Empty) -> cc.Inventory:
            domains = [
                cc.DomainPower(server_id=sid, power_state="running") for sid in agent.spawned
            ]
            return cc.Inventory(host=agent.host, domains=domains)

        self.server = RpcServer(runtime.broker, f"compute.{host}", None)
        self.server.include(router)


class FakeNetworkAgent:
    """A fake network-agent on ``network.<host>``: answers ``wire_port`` without wiring and
    records the ``unwire_port`` casts."""

    def __init__(self, runtime: Any, host: str) -> None:
        from common_rpc import RpcRouter, RpcServer

        self.wired: list[str] = []
        self.unwired: list[str] = []
        router = RpcRouter()
        agent = self

        @router.handler()
        async def unwire_port(deps: Any, port_id: str) -> dict[str, Any]:
            agent.unwired.append(port_id)
            return {"port_id": port_id}

        @router.handler()
        async def wire_port(
            deps: Any, network: dict[str, Any], port: dict[str, Any], rules: Any, generation: int
        ) -> dict[str, Any]:
            agent.wired.append(port["port_id"])
            return {
                "port_id": port["port_id"],
                "observed_generation": generation,
                "applied": True,
                "bridge": "brq" + network["network_id"].replace("-", "")[:11],
                "mtu": network["mtu"],
                "mac": port["mac"],
                "device": "tap" + port["port_id"][:11],
            }

        self.server = RpcServer(runtime.broker, f"network.{host}", None)
        self.server.include(router)


@dataclass
class Cloud:
    api: Api
    network: Any  # network_svc's Api (netapi_helpers-like), or None
    agent: FakeComputeAgent
    host: str

    async def wait_status(self, project: str, server_id: str, *wanted: str) -> dict[str, Any]:
        from common_rpc.testing import wait_for

        async def probe() -> dict[str, Any] | None:
            resp = await self.api.get(project, f"/v2.1/servers/{server_id}")
            server = resp.json().get("server", {})
            return server if server.get("status") in wanted else None

        return await wait_for(probe, timeout=30)

    async def wait_gone(self, project: str, server_id: str) -> None:
        from common_rpc.testing import wait_for

        async def probe() -> bool:
            resp = await self.api.get(project, f"/v2.1/servers/{server_id}")
            return resp.status_code == 404

        await wait_for(probe, timeout=30)


@asynccontextmanager
async def cloud(
    tmp_path: Path,
    amqp_url: str,
    *,
    capacity: dict[str, int] | None = None,
    with_network: bool = True,
    **settings: Any,
) -> AsyncIterator[Cloud]:
    """compute-api (and network-api) on one vhost, a fake agent per service on one host."""
    from contextlib import AsyncExitStack

    from common_rpc.agents import AgentHeartbeat

    host = f"cn-{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(compute_api(tmp_path, amqp_url, **settings))
        runtime = api.app.state.runtime
        agent = FakeComputeAgent(runtime, host)
        await agent.server.start()
        stack.push_async_callback(agent.server.stop)
        network = None
        if with_network:
            network = await stack.enter_async_context(network_api(tmp_path, amqp_url, api.signer))
            net_agent = FakeNetworkAgent(network.app.state.runtime, host)
            await net_agent.server.start()
            stack.push_async_callback(net_agent.server.stop)
        caps = (capacity or {"vcpus": 8, "ram_mb": 8192, "disk_gb": 100}) | {
            "initiator": f"iqn.2010-10.org.stackling:{host}"
        }
        heartbeat = AgentHeartbeat(
            runtime.rpc,
            service="compute",
            binary="compute-agent",
            host=host,
            capabilities=lambda: dict(caps),
        )
        await heartbeat.report()
        from common_rpc.testing import wait_for

        await wait_for(lambda: api.app.state.deps.agents.alive_hosts("compute-agent"))
        yield Cloud(api, network, agent, host)
        await api.app.state.deps.tasks.idle()


@asynccontextmanager
async def network_api(tmp_path: Path, amqp_url: str, signer: IdentitySigner) -> AsyncIterator[Api]:
    from network_svc.app import create_app as create_network_app
    from network_svc.settings import NetworkSettings

    data = tmp_path / "network"
    data.mkdir(exist_ok=True)
    settings = NetworkSettings(
        data_dir=data,
        amqp_url=amqp_url,
        host="net-test",
        identity_public_key_path=tmp_path / "keys" / "identity.pub",
    )
    app = create_network_app(settings)
    async with running_app(app) as http:
        yield Api(app, http, signer)


class FakeVolumeService:
    """A fake volume service on ``volume``: records the attach protocol's calls and
    answers them as the typed contract (``common_rpc.contracts.volume``) says.

    ``fail`` names a method that answers ``Invalid`` (a volume not available, say).
    """

    def __init__(self, runtime: Any) -> None:
        from common_rpc import RpcRouter, RpcServer
        from common_rpc.contracts import volume as cv
        from common_rpc.errors import Invalid

        self.calls: list[tuple[str, str]] = []
        self.fail: str | None = None
        router = RpcRouter()
        fake = self

        def record(method: Any, volume_id: str, status: str) -> Any:
            fake.calls.append((method.name, volume_id))
            if fake.fail == method.name:
                raise Invalid(f"volume {volume_id} refused {method.name}")
            return cv.VolumeInfo(id=volume_id, size=1, status=status)

        moves = {
            cv.RESERVE: "reserved",
            cv.UNRESERVE: "available",
            cv.BEGIN_DETACHING: "detaching",
            cv.ROLL_DETACHING: "in-use",
        }
        for method, status in moves.items():

            def move(method: Any = method, status: str = status) -> Any:
                async def handler(deps: Any, request: cv.VolumeRef) -> cv.VolumeInfo:
                    return record(method, request.volume_id, status)

                return handler

            router.implement(method)(move())

        @router.implement(cv.INITIALIZE_CONNECTION)
        async def initialize_connection(
            deps: Any, request: cv.ConnectionRequest
        ) -> cv.ConnectionInfo:
            vid = request.volume_id
            record(cv.INITIALIZE_CONNECTION, vid, "attaching")
            data = cv.IscsiConnectionData(
                target_iqn=f"iqn.2010-10.org.stackling:volume-{vid}",
                target_portal="127.0.0.1:3260",
                target_lun=1,
                volume_id=vid,
                auth_username=f"vol-{vid[:8]}",
                auth_password="fake-secret",
            )
            return cv.ConnectionInfo(data=data)

        @router.implement(cv.TERMINATE_CONNECTION)
        async def terminate_connection(
            deps: Any, request: cv.ConnectionRequest
        ) -> cv.ConnectionTerminated:
            record(cv.TERMINATE_CONNECTION, request.volume_id, "detaching")
            return cv.ConnectionTerminated(volume_id=request.volume_id)

        @router.implement(cv.ATTACH)
        async def attach(deps: Any, request: cv.AttachRequest) -> cv.VolumeInfo:
            return record(cv.ATTACH, request.volume_id, "in-use")

        @router.implement(cv.DETACH)
        async def detach(deps: Any, request: cv.DetachRequest) -> cv.VolumeInfo:
            return record(cv.DETACH, request.volume_id, "available")

        self.server = RpcServer(runtime.broker, "volume", None)
        self.server.include(router)
