"""The tenant door to the services: token, policy, signed identity, then a streamed forward.

    proxy = Proxy(settings, validator, IdentitySigner.from_file(settings.identity_private_key_file))
    install_proxy(app, proxy)       # outermost ASGI layer for /compute /network /volume /image
    add_lifespan(app, proxy)        # app.add_lifespan: the HTTP client pool opens and closes

Gateway path to replica URL (the query string is passed on exactly as sent):

    /compute/v2.1/servers    -> <compute replica>/v2.1/servers
    /network/v2.0/ports      -> <network replica>/v2.0/ports
    /volume/v3/<p>/volumes   -> <volume replica>/v3/<p>/volumes
    /image/v2/images         -> <compute replica>/image/v2/images   (compute-svc serves images)
    /compute, /compute/      -> <compute replica>/                  (version document)

A service with no replicas in the settings answers 404. Version documents
(``domain.policy.PUBLIC``) need no token; every other request needs a valid
``X-Auth-Token`` (401) that policy allows (403, or 404 for another project's path). The
request goes on with its method, path, query, headers (less hop-by-hop ones, the token and
anything identity-like) and its body streamed, plus ``X-Stackling-Identity`` (signed once
per token and reused for four minutes) and ``X-Request-Id``. The answer comes back
streamed; a ``Location`` pointing at the replica is rewritten to the gateway's public URL.
``X-Forwarded-Host``/``-Proto``/``-Prefix`` tell a service how to build links clients can
follow.

Replicas are taken in turn. One that refuses a connection is skipped for ``down_s`` and the
request goes to the next: always when nothing was sent, otherwise only for an idempotent
method whose body was not read yet. With every replica down the answer is a quick 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from common_rpc.chassis.faults import FaultFormatter
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.chassis.middleware import send_fault
from common_rpc.context import REQUEST_ID_HEADER, RequestContext, reset_context, set_context
from common_rpc.metrics import HTTP_REQUESTS, cached_labels

from ..domain.auth import AuthContext, TokenValidator
from ..domain.policy import authorize, is_public
from ..settings import GatewaySettings
from .edge import FAULTS, UNAUTHENTICATED, read_token, request_id

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway alone: a client must not choose its identity, request id or origin.
_REQUEST_DROP = HOP_BY_HOP | {
    b"host",
    b"expect",
    b"x-auth-token",
    IDENTITY_HEADER.lower().encode(),
    b"x-request-id",
    b"x-openstack-request-id",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"x-forwarded-prefix",
    b"forwarded",
}
# The gateway's server writes its own.
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}
_LOCATION_HEADERS = (b"location", b"content-location")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Action bodies are a few hundred bytes; policy must read them to know the action.
ACTION_BODY_LIMIT = 64 * 1024
# Answers this small are sent without watching for a disconnect (most API answers).
SMALL_RESPONSE = 1024 * 1024
_STREAM_CHUNK = 256 * 1024


@dataclass(frozen=True)
class ProxyRoute:
    prefix: str  # the gateway path it serves: "/image"
    service: str  # its policy and fault shape: "image"
    backend: str  # whose replicas serve it (a GatewaySettings.service_urls() key)
    strip: bool = True  # False: the replica serves it under the same prefix

    @property
    def metric_route(self) -> str:
        return f"{self.prefix}/{{path}}"


ROUTES = (
    ProxyRoute("/compute", "compute", "compute"),
    ProxyRoute("/network", "network", "network"),
    ProxyRoute("/volume", "volume", "volume"),
    ProxyRoute("/image", "image", "compute", strip=False),
)


class Replicas:
    """Round-robin over one service's replica URLs, skipping those that recently failed."""

    def __init__(self, urls: Iterable[str], down_s: float) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self.down_s = down_s
        self._down_until = [0.0] * len(self.urls)
        self._next = 0

    def order(self) -> list[int]:
        """Indexes of the live replicas, the next in turn first."""
        now = time.monotonic()
        count = len(self.urls)
        start, self._next = self._next, (self._next + 1) % count
        indexes = ((start + k) % count for k in range(count))
        return [i for i in indexes if self._down_until[i] <= now]

    def mark_down(self, index: int) -> None:
        self._down_until[index] = time.monotonic() + self.down_s


class ClientGone(Exception):
    """The client went away before its request body was read."""


class _RequestBody:
    """The client's body as an async iterator of chunks, read from ASGI as the replica takes it."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.started = False
        self.done = False
        self.client_gone = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        while not self.done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise ClientGone()
            self.done = not message.get("more_body", False)
            if message.get("body"):
                yield message["body"]


async def _read_all(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it is over ``limit`` bytes; raises ClientGone."""
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        more = message.get("more_body", False)
    return bytes(body)


def _action_of(body: bytes) -> str | None:
    """``{"os-stop": null}`` -> ``"os-stop"``; None unless the body is one key of a JSON object."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return next(iter(data)) if isinstance(data, dict) and len(data) == 1 else None


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers the ``Connection`` header names: hop-by-hop too (RFC 9110 7.6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }


class Proxy:
    """Forwards tenant requests to service replicas over one pooled aiohttp session."""

    def __init__(
        self,
        settings: GatewaySettings,
        validator: TokenValidator,
        signer: IdentitySigner,
        *,
        connect_timeout_s: float = 2.0,
        # The longest a replica may stay silent while answering (uploads are not limited:
        # the clock runs between reads of the response), so a frozen replica cannot hold a
        # client for ever.
        read_timeout_s: float = 60.0,
        down_s: float = 5.0,
        pool_size: int = 1024,
        keepalive_s: float = 4.0,
        identity_ttl_s: int = 300,
        identity_refresh_s: float = 240.0,
        identity_cache_size: int = 10_000,
    ) -> None:
        self.public_url = settings.public_url.rstrip("/")
        self.validator = validator
        self.signer = signer
        self.replicas = {
            name: Replicas(urls, down_s) for name, urls in settings.service_urls().items()
        }
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.pool_size = pool_size
        # Below the services' keep-alive (uvicorn: 5 s), so a pooled connection is never
        # one the server is closing: a POST on such a connection could not be retried.
        self.keepalive_s = keepalive_s
        self.identity_ttl_s = identity_ttl_s
        self.identity_refresh_s = identity_refresh_s
        self.identity_cache_size = identity_cache_size
        self._identities: OrderedDict[str, tuple[float, AuthContext, str]] = OrderedDict()
        public = urlsplit(self.public_url)
        self._forwarded_host = public.netloc
        self._forwarded_proto = public.scheme or "http"
        self._public_path = public.path.rstrip("/")
        self._challenge = f'Keystone uri="{self.public_url}/identity"'.encode()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.pool_size,
            limit_per_host=0,
            keepalive_timeout=self.keepalive_s,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout_s, sock_read=self.read_timeout_s
            ),
            # Forward what the client sent and nothing else; never keep a replica's cookies.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def route_for(self, path: str) -> ProxyRoute | None:
        for route in ROUTES:
            if path == route.prefix or path.startswith(route.prefix + "/"):
                return route
        return None

    async def handle(self, route: ProxyRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request of ``route`` (an ASGI call; see ``ProxyMiddleware``)."""
        started = time.perf_counter()
        status = 500
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        call = _Call(route, scope, receive, tracking_send, request_id(scope["headers"]))
        ctx_token = set_context(RequestContext(request_id=call.rid))
        try:
            await self._serve(call)
        except ClientGone:
            status = 499  # nginx's "client closed request", for the metric only
            log.info("client went away during %s %s", call.method, scope["path"])
        except Exception:
            log.exception("proxy error on %s %s", call.method, scope["path"])
            if response_started:
                raise  # half an answer is out: only dropping the connection is honest
            await call.fault(500, "Gateway error.")
        finally:
            reset_context(ctx_token)
            labels = cached_labels(HTTP_REQUESTS, call.method, route.metric_route, str(status))
            labels.observe(time.perf_counter() - started)

    async def _serve(self, call: _Call) -> None:
        route = call.route
        rest: str = call.scope["path"][len(route.prefix) :]
        replicas = self.replicas.get(route.backend)
        if replicas is None or not replicas.urls:
            await call.fault(404, f"The {route.service} API is not available.")
            return
        target = call.upstream_target()
        if target is None or any(part in (".", "..") for part in rest.split("/")):
            # Dot segments (or an encoded prefix) would let the replica resolve another path
            # than the one policy checked.
            await call.fault(404, "The resource could not be found.")
            return
        token = read_token(call.scope["headers"])
        auth = await self.validator.validate(token) if token else None
        body: bytes | None = None
        if not is_public(route.service, call.method, rest):
            if auth is None:
                await call.fault(401, UNAUTHENTICATED, [(b"www-authenticate", self._challenge)])
                return
            decision = authorize(route.service, call.method, rest, auth)
            if decision.needs_action:
                body = await _read_all(call.receive, ACTION_BODY_LIMIT)
                if body is None:
                    await call.fault(413, "The action body is too large.")
                    return
                action = _action_of(body)
                if action is None:
                    await call.fault(400, "Malformed request body: one action as a JSON object.")
                    return
                decision = authorize(route.service, call.method, rest, auth, action=action)
            if not decision.allowed:
                await call.fault(
                    decision.status,
                    "The resource could not be found."
                    if decision.status == 404
                    else f"Policy does not allow this request: {decision.reason}.",
                )
                return
            set_context(auth.context(call.rid))
        identity = self._identity(token, auth, call.rid) if token and auth else None
        await self._forward(call, replicas, target, identity, body)

    def _identity(self, token: str, auth: AuthContext, rid: str) -> str:
        """The signed identity for ``token``, reused until ``identity_refresh_s`` passed.

        Signing costs ~0.1 ms and services cache their check by the signed string; the
        request id inside is the first request's (services take it from X-Request-Id).
        """
        now = time.monotonic()
        hit = self._identities.get(token)
        if hit is not None and hit[0] > now and hit[1] == auth:
            self._identities.move_to_end(token)
            return hit[2]
        signed = self.signer.sign(auth.context(rid), ttl_s=self.identity_ttl_s)
        self._identities[token] = (now + self.identity_refresh_s, auth, signed)
        self._identities.move_to_end(token)
        if len(self._identities) > self.identity_cache_size:
            self._identities.popitem(last=False)
        return signed

    def _request_headers(self, call: _Call, identity: str | None) -> list[tuple[str, str]]:
        listed = _connection_tokens(call.scope["headers"])
        headers: list[tuple[str, str]] = []
        forwarded_for: list[str] = []
        for name, value in call.scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name not in _REQUEST_DROP and name not in listed:
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
        client = call.scope.get("client")
        if client:
            forwarded_for.append(str(client[0]))
        if forwarded_for:
            headers.append(("X-Forwarded-For", ", ".join(forwarded_for)))
        headers.append(("X-Forwarded-Host", self._forwarded_host))
        headers.append(("X-Forwarded-Proto", self._forwarded_proto))
        prefix = self._public_path + (call.route.prefix if call.route.strip else "")
        if prefix:
            headers.append(("X-Forwarded-Prefix", prefix))
        headers.append((REQUEST_ID_HEADER, call.rid))
        if identity is not None:
            headers.append((IDENTITY_HEADER, identity))
        return headers

    async def _forward(
        self, call: _Call, replicas: Replicas, target: str, identity: str | None, body: bytes | None
    ) -> None:
        if self._session is None:
            await call.fault(503, "The gateway is starting or stopping.")
            return
        method = call.method
        headers = self._request_headers(call, identity)
        stream = _RequestBody(call.receive) if body is None and _has_body(call.scope) else None
        for index in replicas.order():
            base = replicas.urls[index]
            data = body if stream is None else stream.chunks()
            try:
                response = await self._session.request(
                    method,
                    URL(base + target, encoded=True),
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                )
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # Not connected: nothing was sent, so any method may go to the next replica.
                replicas.mark_down(index)
                log.warning("replica %s unreachable, marked down: %s", base, exc)
                continue
            except aiohttp.SocketTimeoutError:
                await call.fault(504, "The service did not answer in time.")
                return
            except aiohttp.ClientError as exc:
                if stream is not None and stream.client_gone:
                    raise ClientGone() from None
                body_sent = stream is not None and stream.started
                if method in IDEMPOTENT and not body_sent:
                    log.warning("replica %s dropped %s %s, retrying: %s", base, method, target, exc)
                    continue
                log.warning("replica %s failed %s %s: %s", base, method, target, exc)
                await call.fault(502, "The service failed to answer.")
                return
            try:
                await self._respond(call, response, base, stream)
            finally:
                response.release()
            return
        await call.fault(503, f"The {call.route.service} service is unavailable; retry later.")

    async def _respond(
        self,
        call: _Call,
        response: aiohttp.ClientResponse,
        base: str,
        stream: _RequestBody | None,
    ) -> None:
        listed = _connection_tokens(response.raw_headers)
        headers: list[tuple[bytes, bytes]] = []
        for raw_name, value in response.raw_headers:
            name = raw_name.lower()
            if name in _RESPONSE_DROP or name in listed:
                continue
            if name in _LOCATION_HEADERS:
                value = self._public_location(value, base, call.route)
            headers.append((name, value))
        send = call.send
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        small = response.content_length is not None and response.content_length <= SMALL_RESPONSE
        body_read = stream is None or stream.done
        if small or not body_read:
            await _pump(response, send)
            return
        # A long answer (a download, a stream): stop reading the replica if the client leaves.
        pump = asyncio.ensure_future(_pump(response, send))
        gone = asyncio.ensure_future(_wait_disconnect(call.receive))
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not pump.done():
                pump.cancel()
                response.close()
        if pump.done() and not pump.cancelled():
            pump.result()  # the replica's error, if any
        else:
            log.info("client left during a streamed answer; replica stream closed")

    def _public_location(self, value: bytes, base: str, route: ProxyRoute) -> bytes:
        """``<replica>/v2.1/servers/1`` -> ``<public>/compute/v2.1/servers/1``; others as given."""
        text = value.decode("latin-1")
        if text != base and not text.startswith((base + "/", base + "?")):
            return value
        prefix = route.prefix if route.strip else ""
        return (self.public_url + prefix + text[len(base) :]).encode("latin-1")


@dataclass
class _Call:
    """One proxied request: what every step needs to know and to answer it."""

    route: ProxyRoute
    scope: Scope
    receive: Receive
    send: Send
    rid: str

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    def upstream_target(self) -> str | None:
        """Path and query for the replica, as the client encoded them (None: not ours).

        The raw path keeps ``%2F`` inside a segment, as the replica's router will see it.
        """
        raw: bytes = self.scope.get("raw_path") or self.scope["path"].encode()
        path = raw.decode("latin-1")
        if not (path == self.route.prefix or path.startswith(self.route.prefix + "/")):
            return None
        if self.route.strip:
            path = path[len(self.route.prefix) :] or "/"
        query = self.scope["query_string"].decode("latin-1")
        return f"{path}?{query}" if query else path

    async def fault(
        self, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        """An error answered by the gateway, in the service's shape, with the request id."""
        rid = self.rid.encode()
        ids = [(b"x-request-id", rid), (b"x-openstack-request-id", rid)]
        formatter: FaultFormatter = FAULTS[self.route.service]
        await send_fault(self.send, formatter, status, message, [*ids, *headers])


async def _pump(response: aiohttp.ClientResponse, send: Send) -> None:
    try:
        async for chunk in response.content.iter_chunked(_STREAM_CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("replica broke off its answer: %s", exc)
        raise
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class ProxyMiddleware:
    """Sends the proxied prefixes to ``proxy`` ahead of the gateway's own middleware.

    Outermost on purpose: the gateway's identity and idempotency layers are for its own
    API, and a service does its own (per project, behind the signed identity).
    """

    def __init__(self, app: ASGIApp, proxy: Proxy) -> None:
        self.app = app
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.proxy.route_for(scope["path"])
            if route is not None:
                await self.proxy.handle(route, scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_proxy(app: FastAPI, proxy: Proxy) -> None:
    """Serve the proxied prefixes on ``app`` (call before the app starts)."""
    app.add_middleware(ProxyMiddleware, proxy=proxy)
