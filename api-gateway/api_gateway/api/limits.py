"""Request limits at the door: a body over the size limit is 413, a stalled one 408.

    install_limits(app, settings)      # app.py, last: outermost of the gateway's layers

A declared ``Content-Length`` over the limit is refused before a byte of the body is read;
a chunked body is counted as it streams and cut at the limit, so neither is held in
memory. Image data (``PUT /image/v2/images/{id}/file``) is streamed to its replica and not
limited, as Glance's own image_size_cap is the compute service's to enforce. A body that
does not arrive in time (a client that sent its headers and stalled) is cut too. In both
cases the inner app sees the client go away (``http.disconnect``), whatever it sent is
dropped, and the client gets the fault in the shape of the API it called, with
``Connection: close``; the rest of a refused body is discarded as it comes (bounded in
time), so the client gets to read that answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common_rpc.chassis.faults import fault_bytes

from ..settings import GatewaySettings
from .edge import FAULTS, request_id

log = logging.getLogger(__name__)

# Streamed uploads of image data, unlimited in size (a dot segment is never an image id).
_UNLIMITED = (("PUT", re.compile(r"^/image/v2/images/(?!\.\.?/)[^/]+/file$")),)
_PREFIXES = {"/compute": "compute", "/network": "network", "/volume": "volume", "/image": "image"}
_DISCONNECT: Message = {"type": "http.disconnect"}
# While refusing a body, a client silent this long has stopped sending it.
_LINGER_IDLE_S = 1.0


def _service(path: str) -> str:
    """Whose fault shape ``path`` answers in (the gateway's own for the rest)."""
    for prefix, service in _PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return "gateway"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses such a request before it gets here
    return None


class RequestLimits:
    """The size and time limits of request bodies, in front of everything the gateway serves."""

    def __init__(self, app: ASGIApp, max_body: int, timeout_s: float) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        unlimited = any(method == m and rule.match(path) for m, rule in _UNLIMITED)
        limit = None if unlimited else self.max_body
        declared = _declared_length(scope)
        if limit is not None and declared is not None and declared > limit:
            await self._refuse(scope, send, 413, self._too_large(limit), drain=receive)
            return
        await _Guarded(self, scope, receive, send, limit).run()

    @staticmethod
    def _too_large(limit: int) -> str:
        return f"Request is too large: the body may be at most {limit} bytes."

    async def _refuse(
        self, scope: Scope, send: Send, status: int, message: str, drain: Receive | None = None
    ) -> None:
        """The fault, then (``drain``) the rest of the client's body read and dropped.

        A client sends its whole body before it reads the answer; a connection closed with
        its data unread is reset, and the answer lost with it. So, as nginx's lingering
        close, what still comes is discarded (never kept) while it keeps coming, up to the
        timeout, and only then is the connection closed.
        """
        rid = request_id(scope["headers"]).encode()
        body = fault_bytes(FAULTS[_service(scope["path"])], status, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-openstack-request-id", rid),
            (b"connection", b"close"),
        ]
        what = f"body over {self.max_body} bytes" if status == 413 else "body stalled"
        log.info("refused %s %s: %s", scope["method"], scope["path"], what)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": drain is not None})
        if drain is not None:
            await self._drain(drain)
            await send({"type": "http.response.body", "body": b""})

    async def _drain(self, receive: Receive) -> None:
        deadline = time.monotonic() + self.timeout_s
        idle_s = min(self.timeout_s, _LINGER_IDLE_S)
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.monotonic()) > 0:
                message = await asyncio.wait_for(receive(), min(left, idle_s))
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return


class _Guarded:
    """One request whose body is counted and timed as the inner app reads it."""

    def __init__(
        self, limits: RequestLimits, scope: Scope, receive: Receive, send: Send, limit: int | None
    ) -> None:
        self.limits, self.scope, self._receive, self._send = limits, scope, receive, send
        self.limit = limit
        self.seen = 0
        self.body_done = False
        self.cut: int | None = None  # 413 or 408 once the body was cut off
        self.started = False  # the inner app began its answer
        # A limited body must be complete by then; an upload may pause this long per chunk.
        self.deadline = time.monotonic() + limits.timeout_s

    async def run(self) -> None:
        try:
            await self.limits.app(self.scope, self.receive, self.send)
        except Exception:
            if self.cut is None:
                raise  # the inner app's own failure, for the server's 500
        if self.cut is not None and not self.started:
            if self.cut == 413:
                message = RequestLimits._too_large(self.limit or 0)
            else:
                message = "The client did not send the request in time."
            drain = self._receive if self.cut == 413 and not self.body_done else None
            await self.limits._refuse(self.scope, self._send, self.cut, message, drain)

    async def receive(self) -> Message:
        if self.cut is not None:
            return _DISCONNECT
        if self.body_done:
            return await self._receive()  # after the body: waiting for a disconnect is fine
        wait = self.limits.timeout_s
        if self.limit is not None:
            wait = max(self.deadline - time.monotonic(), 0.0)
        try:
            message = await asyncio.wait_for(self._receive(), wait)
        except TimeoutError:
            self.cut = 408
            return _DISCONNECT
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
            if self.limit is not None and self.seen > self.limit:
                self.cut = 413  # the rest is drained once the inner app let go
                return _DISCONNECT
        return message

    async def send(self, message: Message) -> None:
        if self.cut is not None and not self.started:
            return  # the inner app's answer to a body it never got whole: ours goes instead
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def install_limits(app: FastAPI, settings: GatewaySettings) -> None:
    """Limit request bodies on ``app``; call last, so nothing reads a body before it."""
    app.add_middleware(
        RequestLimits,
        max_body=settings.max_request_body_bytes,
        timeout_s=settings.request_timeout_s,
    )
