"""Typed RPC contracts: each method's name with its request and reply models, defined once.

The sender and the receiver import the same ``Method``, so what crosses the process
boundary has one type on both sides, checked by pydantic at each end:

    class HostStateRequest(Message):
        host: str

    class HostState(Message):
        ports: list[PortState] = []

    HOST_STATE = Method("host_state", HostStateRequest, HostState)
    NETWORK = Contract("network", [HOST_STATE, ...])       # what one topic serves

    @router.implement(HOST_STATE)                           # the receiver
    async def host_state(deps: Deps, request: HostStateRequest) -> HostState: ...

    state = await client.invoke("network", HOST_STATE, HostStateRequest(host="cn1"))

On the wire a request is the model's JSON fields as the call's arguments and a reply is
the model's JSON, so a typed sender and an older untyped one speak the same protocol.
Unknown fields are ignored on both sides: a newer peer may add fields in a rolling upgrade.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """The base of every RPC request and reply model."""

    model_config = ConfigDict(extra="ignore")


class Empty(Message):
    """A request without arguments, or a reply without content."""


Req = TypeVar("Req", bound=Message)
Rep = TypeVar("Rep", bound=Message)


@dataclass(frozen=True)
class Method(Generic[Req, Rep]):
    """One RPC method: its wire name, request model and reply model.

    ``cast`` marks a one-way method: the sender does not wait, the reply is ``Empty``.
    """

    name: str
    request: type[Req]
    reply: type[Rep]
    cast: bool = False
    doc: str = ""

    def arguments(self, request: Req) -> dict[str, Any]:
        """The wire form of a request: its fields as JSON values."""
        if not isinstance(request, self.request):
            raise TypeError(
                f"{self.name} takes {self.request.__name__}, not {type(request).__name__}"
            )
        return request.model_dump(mode="json")

    def parse_reply(self, value: Any) -> Rep:
        return self.reply.model_validate({} if value is None else value)


@dataclass(frozen=True)
class Contract:
    """The methods one topic serves (``network``, or every ``network.<host>``)."""

    topic: str
    methods: tuple[Method[Any, Any], ...] = field(default_factory=tuple)

    def __init__(self, topic: str, methods: Iterable[Method[Any, Any]]) -> None:
        methods = tuple(methods)
        names = [m.name for m in methods]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"contract {topic!r} names {twice} twice")
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "methods", methods)

    def method(self, name: str) -> Method[Any, Any]:
        for method in self.methods:
            if method.name == name:
                return method
        raise KeyError(f"{self.topic} has no method {name!r}")

    @property
    def names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.methods)
