"""Pure ASGI middleware on every request: metrics, request id and context, verified identity.

    app = FastAPI(middleware=[
        Middleware(MetricsMiddleware),
        Middleware(RequestContextMiddleware, fault_formatter=nova_fault),
        Middleware(IdentityMiddleware, verifier=lambda: verifier, public_paths={"/"},
                   fault_formatter=nova_fault),
    ])

Outermost first. ``RequestContextMiddleware`` also answers unexpected exceptions with a
generic 500 fault, so the error is logged with the request id and the response carries it.
No ``BaseHTTPMiddleware``: these wrap ``send`` and nothing else, which keeps them cheap.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import RequestContext, current_context, new_request_id, reset_context, set_context
from ..errors import RpcError, Unauthorized
from ..metrics import HTTP_REQUESTS
from .faults import FaultFormatter, fault_bytes, nova_fault
from .identity import IDENTITY_HEADER, IdentityVerifier

log = logging.getLogger(__name__)

# OpenStack's shape (req-<uuid4>); anything else is replaced, so logs cannot be forged.
_REQUEST_ID = re.compile(rb"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REQUEST_ID_HEADERS = (b"x-request-id", b"x-openstack-request-id")
_IDENTITY_HEADER = IDENTITY_HEADER.lower().encode()

ALWAYS_PUBLIC = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_fault(
    send: Send,
    formatter: FaultFormatter,
    status: int,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    body = fault_bytes(formatter, status, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _request_id(scope: Scope) -> str:
    for name in _REQUEST_ID_HEADERS:
        value = _header(scope, name)
        if value is not None and _REQUEST_ID.match(value):
            return value.decode()
    return new_request_id()


class MetricsMiddleware:
    """Observes every HTTP request in ``HTTP_REQUESTS``, labelled by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router leaves the matched route in the scope; raw paths would explode labels.
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


class RequestContextMiddleware:
    """Picks the request id, puts it in the context and both response headers; 500 on crash."""

    def __init__(self, app: ASGIApp, fault_formatter: FaultFormatter = nova_fault) -> None:
        self.app = app
        self.formatter = fault_formatter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        rid_headers = [(b"x-request-id", rid.encode()), (b"x-openstack-request-id", rid.encode())]
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), *rid_headers]}
            await send(message)

        token = set_context(RequestContext(request_id=rid))
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error serving %s %s", scope["method"], scope["path"])
            if started:
                raise  # half a response is out: only dropping the connection is honest
            await send_fault(
                send_with_id,
                self.formatter,
                500,
                f"An unexpected error occurred (request {rid}).",
            )
        finally:
            reset_context(token)


class IdentityMiddleware:
    """Refuses requests without a valid gateway-signed identity; sets the context from it."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: Callable[[], IdentityVerifier],
        public_paths: Iterable[str] = (),
        fault_formatter: FaultFormatter = nova_fault,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.formatter = fault_formatter
        paths = ALWAYS_PUBLIC | set(public_paths)
        self.exact = frozenset(p for p in paths if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))

    def is_public(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.is_public(_route_path(scope)):
            await self.app(scope, receive, send)
            return
        raw = _header(scope, _IDENTITY_HEADER)
        try:
            if raw is None:
                raise Unauthorized("The request you have made requires authentication.")
            ctx = self.verifier().verify(raw.decode("latin-1"))
        except RpcError as exc:
            if scope["type"] == "websocket":
                # Closing before accept makes the server answer the handshake with 403.
                await send({"type": "websocket.close", "code": 1008})
            else:
                await send_fault(send, self.formatter, exc.http_status, exc.message)
            return
        if scope["type"] == "http":
            # One request id per request: the one already echoed and logged.
            ctx = ctx.model_copy(update={"request_id": current_context().request_id})
        token = set_context(ctx)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_context(token)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
