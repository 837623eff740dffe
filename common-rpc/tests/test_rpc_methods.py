"""Typed RPC methods over the real RabbitMQ: one model on both sides, checked at each end."""

from __future__ import annotations

import pytest

from common_rpc import Broker, InternalError, Invalid, RpcClient, RpcRouter, RpcServer
from common_rpc.methods import Contract, Empty, Message, Method
from common_rpc.testing import wait_for


class AddRequest(Message):
    a: int
    b: int = 0


class Sum(Message):
    total: int
    note: str = ""


class NoteRequest(Message):
    text: str


ADD = Method("add", AddRequest, Sum)
BROKEN = Method("broken", Empty, Sum)
NOTE = Method("note", NoteRequest, Empty, cast=True)
CALC = Contract("calc", [ADD, BROKEN, NOTE])

router = RpcRouter()


class Deps:
    def __init__(self) -> None:
        self.notes: list[str] = []


@router.implement(ADD)
async def add(deps: Deps, request: AddRequest) -> Sum:
    return Sum(total=request.a + request.b)


@router.implement(BROKEN)
async def broken(deps: Deps, request: Empty) -> Sum:
    return {"note": "no total"}  # type: ignore[return-value]  # the reply model refuses it


@router.implement(NOTE)
async def note(deps: Deps, request: NoteRequest) -> None:
    deps.notes.append(request.text)


@pytest.fixture
async def served(broker: Broker, uid: str):
    topic = f"typed{uid}"
    deps = Deps()
    server = RpcServer(broker, topic, deps)
    server.include(router)
    await server.start()
    yield topic, deps
    await server.stop()
    channel = await broker.channel(broker.config.url)
    await channel.queue_delete(f"rpc.{topic}")
    await channel.close()


async def test_invoke_sends_the_request_model_and_returns_the_reply_model(
    broker: Broker, served
) -> None:
    topic, _ = served
    reply = await RpcClient(broker).invoke(topic, ADD, AddRequest(a=2, b=3), timeout=5)
    assert isinstance(reply, Sum)
    assert reply == Sum(total=5)


async def test_an_untyped_caller_speaks_the_same_wire_form(broker: Broker, served) -> None:
    topic, _ = served
    assert await RpcClient(broker).call(topic, "add", a=4, timeout=5) == {"total": 4, "note": ""}


async def test_a_request_the_model_refuses_is_invalid(broker: Broker, served) -> None:
    topic, _ = served
    with pytest.raises(Invalid, match="a"):
        await RpcClient(broker).call(topic, "add", a="four", timeout=5)


async def test_a_reply_the_model_refuses_is_an_error_not_a_shape(broker: Broker, served) -> None:
    topic, _ = served
    with pytest.raises(InternalError, match="internal error in broken"):
        await RpcClient(broker).invoke(topic, BROKEN, Empty(), timeout=5)


async def test_send_is_one_way(broker: Broker, served) -> None:
    topic, deps = served
    await RpcClient(broker).send(topic, NOTE, NoteRequest(text="hi"), timeout=5)

    async def arrived() -> bool:
        return deps.notes == ["hi"]

    await wait_for(arrived, timeout=5)


async def test_the_wrong_request_type_is_refused_before_sending(broker: Broker) -> None:
    with pytest.raises(TypeError, match="AddRequest"):
        await RpcClient(broker).invoke("nowhere", ADD, NoteRequest(text="x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="one-way"):
        await RpcClient(broker).invoke("nowhere", NOTE, NoteRequest(text="x"))


def test_router_check_lists_what_differs_from_the_contract() -> None:
    assert router.check(CALC) == []
    other = RpcRouter()

    @other.handler()
    async def add(deps: Deps, a: int) -> dict:  # untyped: not the contract's method
        return {}

    @other.handler()
    async def extra(deps: Deps) -> None:
        return None

    assert other.check(CALC) == [
        "add: not served with the contract's typed method",
        "broken: in the contract, not served",
        "extra: served, not in the contract",
        "note: in the contract, not served",
    ]


def test_a_contract_names_each_method_once() -> None:
    with pytest.raises(ValueError, match="add"):
        Contract("calc", [ADD, ADD])
