"""How the gateway process serves: TLS at the door and the connection-level time limits.

    uvicorn.run(app, **server_options(settings))   # ssl_*, http=, timeout_keep_alive

The gateway is the only process tenants reach, so it alone terminates TLS (the services
behind it are on the cloud's own network). A certificate or key that cannot be loaded
stops the start with one line (``StartupError``) rather than at the first handshake.
``HeaderTimeoutH11`` bounds how long a client may take to send its request line and
headers: uvicorn's keep-alive timer stops at the first byte and a new connection has
none, so a client trickling its headers would otherwise hold a connection for ever.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from common_rpc.chassis.startup import StartupError, env_names

from .settings import GatewaySettings

_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_TIMEOUT_BODY = (
    b'{"error": {"code": 408, "title": "Request Timeout", '
    b'"message": "The client did not send the request in time."}}'
)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError):
        return "not readable (permission denied)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, ssl.SSLError):
        return f"not a usable PEM certificate and key ({exc.reason or exc})"
    if isinstance(exc, OSError):
        return f"not readable ({exc.strerror or exc})"
    return str(exc)


def check_tls(settings: GatewaySettings) -> None:
    """The certificate and key load (and match); else a ``StartupError`` naming the file."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None or key is None:
        return
    fix = f"fix {env_names(settings, 'tls_cert_file')} / {env_names(settings, 'tls_key_file')}"
    for path in (cert, key):
        try:
            with Path(path).open("rb") as f:
                f.read(1)
        except OSError as exc:
            raise StartupError(f"TLS file {Path(path).absolute()} {_reason(exc)}; {fix}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"TLS certificate {Path(cert).absolute()} with key {Path(key).absolute()} "
            f"{_reason(exc)}; {fix}"
        ) from None


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's line and headers."""

    header_timeout_s: float = 30.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the headers are in: the body's time is RequestLimits' to keep

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on this connection gets its own deadline

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:
            # Part of a request came: say why the connection ends (nothing came: just end it).
            self.transport.write(_TIMEOUT_408 % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))
        self.transport.close()


def server_options(settings: GatewaySettings) -> dict[str, Any]:
    """uvicorn's options for the gateway: TLS when configured, and its time limits."""

    class Protocol(HeaderTimeoutH11):
        header_timeout_s = settings.request_timeout_s

    options: dict[str, Any] = {"http": Protocol, "timeout_keep_alive": settings.keep_alive_s}
    if settings.tls_enabled:
        options["ssl_certfile"] = str(settings.tls_cert_file)
        options["ssl_keyfile"] = str(settings.tls_key_file)
    return options
