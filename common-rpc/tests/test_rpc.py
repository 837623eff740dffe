"""RPC over the real RabbitMQ: calls, casts, typed errors, timeouts, replicas, host topics."""

from __future__ import annotations

import asyncio
import time

import pytest

from common_rpc import (
    Broker,
    Conflict,
    Forbidden,
    InternalError,
    Invalid,
    MessagingConfig,
    NotFound,
    RequestContext,
    RpcClient,
    RpcRouter,
    RpcServer,
    RpcTimeout,
    current_context,
    use_context,
)
from common_rpc.testing import wait_for

router = RpcRouter()


class Deps:
    def __init__(self, name: str = "a") -> None:
        self.name = name
        self.served = 0
        self.casts: list[str] = []


@router.handler()
async def echo(deps: Deps, text: str, times: int = 1) -> dict:
    deps.served += 1
    ctx = current_context()
    return {"text": text * times, "by": deps.name, "project": ctx.project_id, "rid": ctx.request_id}


@router.handler()
async def slow(deps: Deps, seconds: float) -> str:
    deps.served += 1
    await asyncio.sleep(seconds)
    return deps.name


@router.handler()
async def fail(deps: Deps, kind: str) -> None:
    errors = {"not_found": NotFound, "conflict": Conflict, "forbidden": Forbidden}
    if kind in errors:
        raise errors[kind](f"{kind} happened", details={"kind": kind})
    raise RuntimeError("secret internal detail")


@router.handler()
async def remember(deps: Deps, item: str) -> None:
    deps.casts.append(item)


async def _server(broker: Broker, topic: str, deps: Deps) -> RpcServer:
    server = RpcServer(broker, topic, deps)
    server.include(router)
    await server.start()
    return server


async def _delete_queue(broker: Broker, topic: str) -> None:
    channel = await broker.channel(broker.config.url)
    await channel.queue_delete(f"rpc.{topic}")
    await channel.close()


@pytest.fixture
async def topic(broker: Broker, uid: str):
    name = f"t{uid}"
    yield name
    await _delete_queue(broker, name)


async def test_call_returns_result_and_carries_context(broker: Broker, topic: str) -> None:
    server = await _server(broker, topic, Deps())
    client = RpcClient(broker)
    ctx = RequestContext(project_id="proj-1", user_id="u1", roles=frozenset({"member"}))
    with use_context(ctx):
        reply = await client.call(topic, "echo", text="ab", times=2, timeout=5)
    assert reply == {"text": "abab", "by": "a", "project": "proj-1", "rid": ctx.request_id}
    await server.stop()


async def test_cast_runs_without_reply(broker: Broker, topic: str) -> None:
    deps = Deps()
    server = await _server(broker, topic, deps)
    await RpcClient(broker).cast(topic, "remember", item="x1")

    async def arrived() -> bool:
        return deps.casts == ["x1"]

    await wait_for(arrived, timeout=5)
    await server.stop()


@pytest.mark.parametrize(
    ("kind", "error"), [("not_found", NotFound), ("conflict", Conflict), ("forbidden", Forbidden)]
)
async def test_remote_errors_come_back_typed(broker: Broker, topic: str, kind, error) -> None:
    server = await _server(broker, topic, Deps())
    with pytest.raises(error) as info:
        await RpcClient(broker).call(topic, "fail", kind=kind, timeout=5)
    assert info.value.message == f"{kind} happened"
    assert info.value.details == {"kind": kind}
    await server.stop()


async def test_unexpected_error_hides_the_traceback(broker: Broker, topic: str) -> None:
    server = await _server(broker, topic, Deps())
    with use_context(RequestContext(request_id="req-abc")):
        with pytest.raises(InternalError) as info:
            await RpcClient(broker).call(topic, "fail", kind="boom", timeout=5)
    assert "secret internal detail" not in str(info.value)
    assert "Traceback" not in str(info.value)
    assert "req-abc" in str(info.value)
    await server.stop()


async def test_bad_arguments_and_unknown_methods_are_invalid(broker: Broker, topic: str) -> None:
    server = await _server(broker, topic, Deps())
    client = RpcClient(broker)
    with pytest.raises(Invalid, match="times"):
        await client.call(topic, "echo", text="a", times="many", timeout=5)
    with pytest.raises(Invalid, match="text"):
        await client.call(topic, "echo", timeout=5)
    with pytest.raises(Invalid, match="unknown method"):
        await client.call(topic, "nope", timeout=5)
    await server.stop()


async def test_call_without_server_times_out_on_time(broker: Broker, uid: str) -> None:
    client = RpcClient(broker)
    started = time.monotonic()
    with pytest.raises(RpcTimeout):
        await client.call(f"nobody{uid}", "echo", text="x", timeout=0.5)
    assert time.monotonic() - started < 2.0


async def test_slow_handler_times_out_and_late_reply_is_ignored(broker: Broker, topic: str) -> None:
    server = await _server(broker, topic, Deps())
    client = RpcClient(broker)
    with pytest.raises(RpcTimeout):
        await client.call(topic, "slow", seconds=1.0, timeout=0.3)
    await asyncio.sleep(1.0)  # the late reply arrives and must not disturb the next call
    assert (await client.call(topic, "echo", text="ok", timeout=5))["text"] == "ok"
    await server.stop()


async def test_replicas_share_one_topic(topic: str) -> None:
    brokers = [Broker(MessagingConfig(), name=f"replica-{i}") for i in range(3)]
    deps = [Deps("a"), Deps("b")]
    servers = [await _server(brokers[i], topic, deps[i]) for i in range(2)]
    client = RpcClient(brokers[2])
    names = await asyncio.gather(*(client.call(topic, "slow", seconds=0.05) for _ in range(40)))
    assert set(names) == {"a", "b"}
    assert deps[0].served + deps[1].served == 40
    assert min(deps[0].served, deps[1].served) >= 5
    for server in servers:
        await server.stop()
    for b in brokers:
        await b.close()


async def test_host_topic_reaches_only_that_agent(broker: Broker, topic: str) -> None:
    agents = {host: Deps(host) for host in ("h1", "h2")}
    servers = [await _server(broker, f"{topic}.{h}", d) for h, d in agents.items()]
    client = RpcClient(broker)
    for _ in range(5):
        assert (await client.call(f"{topic}.h2", "echo", text="x", timeout=5))["by"] == "h2"
    assert agents["h1"].served == 0
    for server in servers:
        await server.stop()
    for host in agents:
        await _delete_queue(broker, f"{topic}.{host}")


async def test_concurrent_calls_are_matched_to_their_replies(broker: Broker, topic: str) -> None:
    server = await _server(broker, topic, Deps())
    client = RpcClient(broker)
    replies = await asyncio.gather(*(client.call(topic, "echo", text=str(i)) for i in range(300)))
    assert [r["text"] for r in replies] == [str(i) for i in range(300)]
    await server.stop()
