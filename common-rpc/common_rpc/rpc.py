"""Request/reply RPC and one-way casts over RabbitMQ.

A topic is a queue: ``network`` is shared by every network-api replica (competing
consumers), ``network.<host>`` belongs to one agent. Replies come back through RabbitMQ's
direct reply-to, matched by correlation id; every call has a deadline and raises
``RpcTimeout`` when it passes. Handler arguments are validated with pydantic and remote
errors come back typed (see ``errors``).

    router = RpcRouter()

    @router.handler()
    async def ping(deps: Deps, message: str = "") -> dict:
        return {"pong": message}

    server = RpcServer(broker, "network", deps)
    server.include(router)
    await server.start()
    reply = await RpcClient(broker).call("network", "ping", message="hi", timeout=5)

A request is acked only after its handler ran, so a replica killed mid-handler leaves the
work to another. Mutating calls may carry an ``op_id``: with an ``OperationLog`` the server
runs an operation once, answers retries with the stored result, and dead-letters a
request that keeps killing its workers instead of letting it loop.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar, get_type_hints

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from pamqp.commands import Basic
from pydantic import BaseModel, ValidationError, create_model

from .broker import TRANSIENT_ERRORS, Broker, cancel_consumer, close_channel, retry_transient
from .context import RequestContext, current_context, reset_context, set_context
from .errors import InternalError, Invalid, RpcError, RpcTimeout, error_from_wire
from .methods import Contract, Method, Rep, Req
from .metrics import RPC_CALLS, RPC_SERVER_SECONDS, cached_labels

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[..., Awaitable[Any]]

Properties = Basic.Properties
REPLY_TO = "amq.rabbitmq.reply-to"
DEAD_LETTER_QUEUE = "rpc.dead"
# Clocks of caller and server hosts differ a little (NTP): a request is expired only once
# its deadline passed by more than this.
DEADLINE_GRACE_S = 1.0
# How often a delivery whose operation runs elsewhere asks whether it finished.
OPERATION_POLL_S = 0.2


def queue_name(topic: str) -> str:
    """The queue behind a topic: ``rpc.network``, ``rpc.network.host1``."""
    return f"rpc.{topic}"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default)


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    name: str
    func: Handler
    args_model: type[BaseModel] | None
    # A typed handler's contract: it takes ``(deps, request)`` and returns the reply model.
    method: Method[Any, Any] | None = None


class RpcRouter:
    """A group of handlers, registered by decorator and included into an ``RpcServer``."""

    def __init__(self) -> None:
        self.handlers: dict[str, HandlerSpec] = {}

    def handler(self, name: str | None = None) -> Callable[[Handler], Handler]:
        def register(func: Handler) -> Handler:
            method = name or func.__name__
            if method in self.handlers:
                raise ValueError(f"RPC method {method!r} registered twice")
            self.handlers[method] = HandlerSpec(method, func, _args_model(func, method))
            return func

        return register

    def implement(self, method: Method[Any, Any]) -> Callable[[Handler], Handler]:
        """Register ``async def f(deps, request: Req) -> Rep`` as ``method``'s handler."""

        def register(func: Handler) -> Handler:
            if method.name in self.handlers:
                raise ValueError(f"RPC method {method.name!r} registered twice")
            self.handlers[method.name] = HandlerSpec(method.name, func, None, method)
            return func

        return register

    def check(self, contract: Contract) -> list[str]:
        """What differs between these handlers and ``contract`` (empty: they agree)."""
        missing = contract.names - set(self.handlers)
        problems = [f"{name}: in the contract, not served" for name in missing]
        for name, spec in sorted(self.handlers.items()):
            if name not in contract.names:
                problems.append(f"{name}: served, not in the contract")
            elif spec.method is not contract.method(name):
                problems.append(f"{name}: not served with the contract's typed method")
        return sorted(problems)


def _args_model(func: Handler, method: str) -> type[BaseModel] | None:
    """A pydantic model of the handler's parameters after the first (``deps``)."""
    params = list(inspect.signature(func).parameters.values())[1:]
    if not params:
        return None
    hints = get_type_hints(func)
    fields: dict[str, Any] = {
        p.name: (hints.get(p.name, Any), ... if p.default is p.empty else p.default) for p in params
    }
    return create_model(f"{method}_args", **fields)


class OperationLog(Protocol):
    """Where a server records mutating operations by id (see ``sql_store.SqlOperationLog``)."""

    lease_s: float

    async def begin(self, op_id: str, method: str) -> tuple[str, Any]:
        """Count an attempt; answer ("run", None), ("done", reply), ("dead", None), or
        ("busy", None) while another delivery runs it under a fresh lease."""

    async def renew(self, op_id: str) -> None:
        """Extend the lease of an operation this server is running."""

    async def finish(self, op_id: str, reply: dict[str, Any]) -> None:
        """Store the reply that every retry of this operation gets."""


class RpcServer:
    """Consumes one topic's queue and dispatches each request to its handler."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        deps: Any = None,
        *,
        prefetch: int | None = None,
        oplog: OperationLog | None = None,
        exclusive: bool = False,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.deps = deps
        self.prefetch = prefetch or broker.config.rpc_prefetch
        self.oplog = oplog
        self.handlers: dict[str, HandlerSpec] = {}
        self._exclusive = exclusive
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()

    def include(self, router: RpcRouter) -> None:
        for name, spec in router.handlers.items():
            if name in self.handlers:
                raise ValueError(f"RPC method {name!r} registered twice on {self.topic}")
            self.handlers[name] = spec

    async def start(self) -> None:
        cfg = self.broker.config
        url = cfg.url_for_topic(self.topic)
        self._channel = await self.broker.channel(url, prefetch=self.prefetch)
        arguments: dict[str, Any] = {"x-queue-type": cfg.rpc_queue_type}
        self._queue = await self._channel.declare_queue(
            queue_name(self.topic), durable=True, arguments=arguments
        )
        if self.oplog is not None:
            await self._channel.declare_queue(
                DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
            )
        self._consumer_tag = await self._queue.consume(self._on_message, exclusive=self._exclusive)
        log.info("rpc server listening", extra={"topic": self.topic})

    async def stop(self, drain_s: float = 10.0) -> None:
        """Stop taking requests, let the running ones finish, then close the channel."""
        await cancel_consumer(self._queue, self._consumer_tag)
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=drain_s)
        await close_channel(self._channel)
        self._queue = self._channel = self._consumer_tag = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._serve(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _serve(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            request = orjson.loads(message.body)
            method = request["m"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("rpc: undecodable request dropped", extra={"topic": self.topic})
            await message.reject(requeue=False)
            return
        ctx = RequestContext.from_wire(request.get("c"))
        token = set_context(ctx)
        outcome = "ok"
        try:
            op_id = request.get("o")
            deadline = request.get("d")
            if isinstance(deadline, int | float) and time.time() > deadline + DEADLINE_GRACE_S:
                # The caller gave up (RpcTimeout) before we got here: running it now would
                # make what nobody waits for (it compensates for the call on its side).
                outcome = "expired"
                log.warning("rpc: %s dropped, its caller's deadline passed", method)
                await message.ack()
                return
            if op_id and self.oplog is not None:
                reply = await self._run_once(
                    message, method, op_id, request.get("a") or {}, deadline
                )
            else:
                reply = await self._dispatch(method, request.get("a") or {})
            if reply is not None and "e" in reply:
                outcome = reply["e"]["code"]
            if message.reply_to and reply is not None:
                await self._reply(message, reply)
            await message.ack()
        except TRANSIENT_ERRORS:
            # Our channel died mid-request: the broker requeues it for another replica.
            outcome = "lost"
            log.warning("rpc: lost the broker while serving %s", method)
        finally:
            cached_labels(RPC_SERVER_SECONDS, self.topic, method, outcome).observe(
                time.perf_counter() - started
            )
            reset_context(token)

    async def _run_once(
        self,
        message: AbstractIncomingMessage,
        method: str,
        op_id: str,
        args: dict[str, Any],
        deadline: float | None,
    ) -> dict[str, Any] | None:
        """Run the operation unless it ran or runs elsewhere; None: nobody waits any more."""
        oplog = self.oplog
        assert oplog is not None
        state, stored = await oplog.begin(op_id, method)
        while state == "busy":  # another delivery holds it: its reply is ours
            if deadline is not None and time.time() > deadline:
                return None
            await asyncio.sleep(OPERATION_POLL_S)
            state, stored = await oplog.begin(op_id, method)
        if state == "done":
            return stored
        if state == "dead":
            await self._dead_letter(message)
            return {
                "e": InternalError(f"operation {op_id} abandoned after repeated failures").to_wire()
            }
        renewing = asyncio.create_task(self._renew(op_id), name=f"lease-{op_id}")
        try:
            reply = await self._dispatch(method, args)
        finally:
            renewing.cancel()
        await oplog.finish(op_id, reply)
        return reply

    async def _renew(self, op_id: str) -> None:
        assert self.oplog is not None
        every = self.oplog.lease_s / 3
        while True:
            await asyncio.sleep(every)
            try:
                await self.oplog.renew(op_id)
            except Exception:  # a missed renewal only risks a second run, as before leases
                log.warning("rpc: could not renew the lease of %s", op_id, exc_info=True)

    async def _dispatch(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        spec = self.handlers.get(method)
        if spec is None:
            return {"e": Invalid(f"unknown method {method!r} on topic {self.topic!r}").to_wire()}
        try:
            if spec.method is not None:
                request = spec.method.request.model_validate(args)
                result = await spec.func(self.deps, request)
                try:
                    result = spec.method.parse_reply(result)
                except ValidationError as exc:  # our bug, not the caller's arguments
                    raise TypeError(f"{method} replied off its contract: {_short(exc)}") from exc
            elif spec.args_model is None:
                if args:
                    raise Invalid(f"{method} takes no arguments")
                result = await spec.func(self.deps)
            else:
                parsed = spec.args_model.model_validate(args)
                result = await spec.func(self.deps, **parsed.__dict__)
        except ValidationError as exc:
            return {"e": Invalid(f"invalid arguments for {method}: {_short(exc)}").to_wire()}
        except RpcError as exc:
            return {"e": exc.to_wire()}
        except Exception:
            rid = current_context().request_id
            log.exception("rpc handler %s failed", method)
            return {"e": InternalError(f"internal error in {method} (request {rid})").to_wire()}
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        return {"r": result}

    async def _reply(self, message: AbstractIncomingMessage, reply: dict[str, Any]) -> None:
        assert self._channel is not None
        # mandatory=False: RabbitMQ bounces a mandatory reply to a direct reply-to address.
        await _publish(
            self._channel,
            dumps(reply),
            Properties(correlation_id=message.correlation_id),
            message.reply_to or "",
            "reply",
        )

    async def _dead_letter(self, message: AbstractIncomingMessage) -> None:
        assert self._channel is not None
        log.error("rpc: request dead-lettered after too many attempts", extra={"topic": self.topic})
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                headers={"x-topic": self.topic},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=DEAD_LETTER_QUEUE,
            mandatory=False,
        )


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
        for err in exc.errors()[:5]
    )


class _Awaited(NamedTuple):
    """A call waiting for its reply, and what it sent."""

    reply: asyncio.Future[bytes]
    body: bytes
    routing_key: str
    deadline: float  # loop time
    method: str


class _ReplyChannel:
    """One channel per broker: requests go out on it and replies come back to it."""

    _ids = itertools.count()

    def __init__(self, channel: AbstractRobustChannel, queue: AbstractQueue) -> None:
        self.channel = channel
        self.queue = queue
        # correlation id -> each call still awaited: its reply's future, and what it sent
        # (sent again when the channel comes back, see ``_resend``)
        self.pending: dict[str, _Awaited] = {}
        self.prefix = f"{os.getpid()}.{id(self):x}."
        channel.reopen_callbacks.add(self._resend)

    async def _resend(self, _channel: Any) -> None:
        """The connection came back: the old channel's reply-to went with it, so no reply
        to a request sent before can arrive, and a request the broker held in memory may
        be gone. What is still awaited goes out again, with what is left of its deadline.
        Handlers are idempotent (mutating calls carry operation ids), and a copy that
        arrives past its deadline is dropped by the server."""
        now = asyncio.get_running_loop().time()
        for correlation_id, call in list(self.pending.items()):
            if call.reply.done() or call.deadline <= now:
                continue
            properties = Properties(
                correlation_id=correlation_id,
                reply_to=REPLY_TO,
                expiration=str(max(int((call.deadline - now) * 1000), 1)),
            )
            try:
                await _publish(self.channel, call.body, properties, call.routing_key, call.method)
            except Exception as exc:  # its caller's deadline still ends the call
                log.warning("rpc: %s not sent again after a reconnect: %s", call.method, exc)

    @classmethod
    async def open(cls, broker: Broker, url: str) -> _ReplyChannel:
        channel = await broker.channel(url)
        queue = await channel.declare_queue(REPLY_TO, passive=True)
        self = cls(channel, queue)
        await queue.consume(self._on_reply, no_ack=True)
        return self

    def next_id(self) -> str:
        return f"{self.prefix}{next(self._ids)}"

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        call = self.pending.pop(message.correlation_id or "", None)
        if call is not None and not call.reply.done():
            call.reply.set_result(message.body)


class RpcClient:
    """Calls and casts to any topic; safe to share by every task of a process."""

    def __init__(self, broker: Broker, *, timeout: float = 30.0) -> None:
        self.broker = broker
        self.timeout = timeout
        self._channels: dict[str, _ReplyChannel] = {}
        self._lock = asyncio.Lock()

    async def _reply_channel(self, url: str) -> _ReplyChannel:
        rc = self._channels.get(url)
        if rc is None:
            async with self._lock:
                rc = self._channels.get(url)
                if rc is None:
                    rc = await retry_transient(lambda: _ReplyChannel.open(self.broker, url), url)
                    self._channels[url] = rc
        return rc

    async def call(
        self,
        topic: str,
        method: str,
        /,
        *,
        timeout: float | None = None,
        op_id: str | None = None,
        result: type[T] | None = None,
        **args: Any,
    ) -> Any:
        """Call ``method`` on ``topic`` and wait for its reply (or ``RpcTimeout``)."""
        value = await self._call(topic, method, args, timeout=timeout, op_id=op_id)
        if result is not None and issubclass(result, BaseModel):
            return result.model_validate(value)
        return value

    async def invoke(
        self,
        topic: str,
        method: Method[Req, Rep],
        request: Req,
        /,
        *,
        timeout: float | None = None,
        op_id: str | None = None,
    ) -> Rep:
        """Call a typed ``method`` (see ``methods``); its reply comes back as its model."""
        if method.cast:
            raise TypeError(f"{method.name} is one-way: send() it")
        value = await self._call(
            topic, method.name, method.arguments(request), timeout=timeout, op_id=op_id
        )
        return method.parse_reply(value)

    async def send(
        self,
        topic: str,
        method: Method[Req, Any],
        request: Req,
        /,
        *,
        timeout: float | None = None,
    ) -> None:
        """Cast a typed one-way ``method``: no reply, no wait for it to run."""
        await self._cast(topic, method.name, method.arguments(request), timeout=timeout)

    async def _call(
        self,
        topic: str,
        method: str,
        args: dict[str, Any],
        *,
        timeout: float | None,
        op_id: str | None,
    ) -> Any:
        timeout = self.timeout if timeout is None else timeout
        body = dumps(
            {
                "m": method,
                "a": args,
                "c": current_context().to_wire(),
                "o": op_id,
                "d": time.time() + timeout,  # the server drops what arrives later
            }
        )
        url = self.broker.config.url_for_topic(topic)
        routing_key = queue_name(topic)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                rc = await self._reply_channel(url)
                correlation_id = rc.next_id()
                fut: asyncio.Future[bytes] = loop.create_future()
                rc.pending[correlation_id] = _Awaited(fut, body, routing_key, deadline, method)
                try:
                    # The broker drops a request nobody took before its caller gave up.
                    properties = Properties(
                        correlation_id=correlation_id,
                        reply_to=REPLY_TO,
                        expiration=str(max(int(timeout * 1000), 1)),
                    )
                    await _publish(rc.channel, body, properties, routing_key, method)
                    raw = await fut
                finally:
                    rc.pending.pop(correlation_id, None)
        except TimeoutError:
            cached_labels(RPC_CALLS, topic.split(".", 1)[0], method, "timeout").inc()
            raise RpcTimeout(f"{topic}.{method}: no reply within {timeout:g}s") from None
        reply = orjson.loads(raw)
        if "e" in reply:
            cached_labels(RPC_CALLS, topic.split(".", 1)[0], method, "error").inc()
            raise error_from_wire(reply["e"])
        cached_labels(RPC_CALLS, topic.split(".", 1)[0], method, "ok").inc()
        return reply.get("r")

    async def cast(
        self, topic: str, method: str, /, *, timeout: float | None = None, **args: Any
    ) -> None:
        """Send ``method`` to ``topic`` without waiting for it to run."""
        await self._cast(topic, method, args, timeout=timeout)

    async def _cast(
        self, topic: str, method: str, args: dict[str, Any], *, timeout: float | None
    ) -> None:
        timeout = self.timeout if timeout is None else timeout
        body = dumps({"m": method, "a": args, "c": current_context().to_wire(), "o": None})
        url = self.broker.config.url_for_topic(topic)
        try:
            async with asyncio.timeout(timeout):
                rc = await self._reply_channel(url)
                await _publish(rc.channel, body, Properties(), queue_name(topic), method)
        except TimeoutError:
            raise RpcTimeout(f"{topic}.{method}: broker unavailable for {timeout:g}s") from None
        cached_labels(RPC_CALLS, topic.split(".", 1)[0], method, "cast").inc()


async def _publish(
    channel: AbstractRobustChannel,
    body: bytes,
    properties: Properties,
    routing_key: str,
    what: str,
) -> None:
    """Publish to the default exchange; on a broken connection, retry until the deadline.

    This is the hot path of every call and reply, so it skips aio-pika's Message objects
    and hands the AMQP properties straight to the channel underneath.
    """
    if channel._connection.connected.is_set():  # the robust connection behind the channel
        try:
            underlay = await channel.get_underlay_channel()
            await underlay.basic_publish(
                body, exchange="", routing_key=routing_key, properties=properties, mandatory=False
            )
            return
        except TRANSIENT_ERRORS:
            log.debug("rpc publish failed, retrying until the deadline", exc_info=True)

    async def again() -> None:
        await channel.ready()
        underlay = await channel.get_underlay_channel()
        await underlay.basic_publish(
            body, exchange="", routing_key=routing_key, properties=properties, mandatory=False
        )

    await retry_transient(again, what)
