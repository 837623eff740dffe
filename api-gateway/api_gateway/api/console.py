"""The web console: its static files under ``/console/``, its session, and its cookie edge.

    app.include_router(console_router(deps))   # /console/session, then the files
    app.add_middleware(ConsoleEdge)            # outermost: cookie -> X-Auth-Token, headers

    POST   /console/session  {"username", "password", "project"}  X-Stackling-Console: 1
                             -> 201 {"session": {"token": {...}, "csrf_token": "..."}} + cookie
    GET    /console/session  (cookie, X-Stackling-Console)  -> 200 the same, or 401
    PUT    /console/session  {"project_id"} (cookie, X-CSRF-Token) -> 200, a new cookie
    DELETE /console/session  (cookie, X-CSRF-Token) -> 204, the token revoked, cookie cleared

The console is a page that calls the public APIs (``/compute``, ``/network``, ``/volume``,
``/image``, ``/identity``, ``/v1/events``) as the user who logged in; these routes only
log in through the same identity logic as ``POST /identity/v3/auth/tokens`` and keep the
token in an HttpOnly cookie (``domain.console`` says when the cookie may stand for
``X-Auth-Token``). Every ``/console`` answer carries a Content-Security-Policy that allows
the console's own files only, no inline script or style and no HTML strings in the DOM
(Trusted Types), and may not be framed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common_rpc.chassis.faults import FaultFormatter
from common_rpc.chassis.middleware import send_fault
from common_rpc.errors import Invalid, Unauthorized

from ..domain import console
from ..domain.authn import authenticate
from ..domain.catalog import build_catalog
from ..domain.schemas import Auth
from ..domain.tokens import TokenInfo
from ..wiring import Deps
from .edge import FAULTS, UNAUTHENTICATED, read_token
from .views import token_body

STATIC_DIR = Path(__file__).resolve().parent.parent / "console"
PREFIX = "/console"
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'; "
        b"require-trusted-types-for 'script'; trusted-types 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    # Revalidated on every load (ETag): an upgraded gateway never serves a stale page.
    (b"cache-control", b"no-cache"),
]
_FAULT_BY_PREFIX = (
    ("/compute", "compute"),
    ("/volume", "volume"),
    ("/network", "network"),
    ("/image", "image"),
)


class LoginBody(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=255)]
    password: Annotated[str, Field(max_length=4096)]
    # A project name; empty: the user's default project.
    project: Annotated[str, Field(max_length=64)] = ""


class SwitchBody(BaseModel):
    project_id: Annotated[str, Field(min_length=1, max_length=64)]


def console_router(deps: Deps) -> APIRouter:
    """The session routes; the static files are mounted by ``install_console``."""
    router = APIRouter(tags=["console"])
    settings = deps.settings

    def secure(request: Request) -> bool:
        return request.url.scheme == "https" or settings.public_url.startswith("https:")

    async def answer(request: Request, secret: str, info: TokenInfo, status: int) -> Response:
        if info.project_id is None:
            raise Unauthorized("The console needs a project: name one you have a role on.")
        body = token_body(info, await build_catalog(deps.sessions, info.project_id, info.user_id))
        body["csrf_token"] = console.csrf_token(secret)
        left = int((info.expires_at - datetime.now(UTC)).total_seconds())
        cookie = console.session_cookie(secret, max_age_s=left, secure=secure(request))
        return JSONResponse({"session": body}, status_code=status, headers={"set-cookie": cookie})

    def console_request(marker: str | None) -> None:
        # Forms and links of other sites cannot send a custom header (no CORS here).
        if not marker:
            raise Invalid(f"The {console.CONSOLE_HEADER} header is required.")

    @router.get(PREFIX, include_in_schema=False)
    async def bare() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.post(f"{PREFIX}/session", status_code=201)
    async def login(
        request: Request,
        body: LoginBody,
        x_stackling_console: str | None = Header(default=None),
    ) -> Response:
        console_request(x_stackling_console)
        user: dict[str, Any] = {
            "name": body.username,
            "domain": {"id": "default"},
            "password": body.password,
        }
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
        if body.project:
            auth["scope"] = {"project": {"name": body.project, "domain": {"id": "default"}}}
        secret, info = await authenticate(deps, Auth.model_validate(auth))
        return await answer(request, secret, info, 201)

    @router.get(f"{PREFIX}/session")
    async def current(
        request: Request, x_stackling_console: str | None = Header(default=None)
    ) -> Response:
        console_request(x_stackling_console)
        secret = read_token(request.scope["headers"])
        info = await deps.tokens.describe(secret) if secret else None
        if secret is None or info is None:
            raise Unauthorized(UNAUTHENTICATED)
        return await answer(request, secret, info, 200)

    @router.put(f"{PREFIX}/session")
    async def switch_project(request: Request, body: SwitchBody) -> Response:
        """A token of the same user and lifetime on another project; the old one is revoked."""
        secret = read_token(request.scope["headers"])
        if secret is None:
            raise Unauthorized(UNAUTHENTICATED)
        auth = {
            "identity": {"methods": ["token"], "token": {"id": secret}},
            "scope": {"project": {"id": body.project_id}},
        }
        new_secret, info = await authenticate(deps, Auth.model_validate(auth))
        await deps.tokens.revoke(secret)
        return await answer(request, new_secret, info, 200)

    @router.delete(f"{PREFIX}/session", status_code=204)
    async def logout(request: Request) -> Response:
        secret = read_token(request.scope["headers"])
        if secret is not None and await deps.tokens.describe(secret) is not None:
            await deps.tokens.revoke(secret)
        cookie = console.cleared_cookie(secure=secure(request))
        return Response(status_code=204, headers={"set-cookie": cookie})

    return router


class ConsoleEdge:
    """Outermost layer: the session cookie as ``X-Auth-Token`` where ``domain.console``
    allows it (the cookie and CSRF header then removed, so no service sees them), and the
    console's security headers on every ``/console`` answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        cookies = [v for k, v in headers if k == b"cookie"]
        secret = console.read_cookie(cookies) if cookies else None
        if secret is not None and read_token(headers) is None:
            found = dict(headers)  # one value per name is all the decision reads
            csrf = found.get(console.CSRF_HEADER.lower().encode())
            request = console.Request(
                method=scope["method"],
                path=path,
                fetch_site=found.get(b"sec-fetch-site"),
                csrf=csrf.decode("latin-1") if csrf is not None else None,
                console=console.CONSOLE_HEADER.lower().encode() in found,
            )
            use = console.decide(request, secret)
            if use is console.Use.REFUSE:
                message = "The console's CSRF token is missing or wrong; log in again."
                await send_fault(send, _fault_of(path), 403, message, SECURITY_HEADERS)
                return
            if use is console.Use.TOKEN:
                scope = dict(scope, headers=_with_token(headers, secret))
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.app(scope, receive, _secured(send))
        else:
            await self.app(scope, receive, send)


def _with_token(headers: list[tuple[bytes, bytes]], secret: str) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name == b"cookie":
            value = console.without_cookie(value)
            if not value:
                continue
        elif name == console.CSRF_HEADER.lower().encode():
            continue
        out.append((name, value))
    out.append((b"x-auth-token", secret.encode("latin-1")))
    return out


def _secured(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in SECURITY_HEADERS}
            kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
            message = dict(message, headers=[*kept, *SECURITY_HEADERS])
        await send(message)

    return wrapped


def _fault_of(path: str) -> FaultFormatter:
    for prefix, service in _FAULT_BY_PREFIX:
        if path == prefix or path.startswith(prefix + "/"):
            return FAULTS[service]
    return FAULTS["gateway"]


def install_console(app: Any, deps: Deps) -> None:
    """Mount the console on ``app``: session routes, static files, and the cookie edge
    (added last, so it runs before the proxy)."""
    app.include_router(console_router(deps))
    app.mount(PREFIX, StaticFiles(directory=STATIC_DIR, html=True), name="console")
    app.add_middleware(ConsoleEdge)
