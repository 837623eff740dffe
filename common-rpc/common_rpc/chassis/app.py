"""The FastAPI application every service starts from: health, metrics, identity, faults.

    app = make_app(settings, runtime, title="Stackling Networking", version="2.0",
                   routers=[networks.router, ports.router], fault_formatter=neutron_fault,
                   public_paths={"/"})
    run_app(app, settings)   # uvicorn on settings.bind_host:settings.port, JSON logs

Every response carries ``X-Request-Id`` and ``X-Openstack-Request-Id``; every route but
``/healthz``, ``/readyz``, ``/metrics`` and ``public_paths`` needs the gateway-signed
``X-Stackling-Identity`` header, and sees the caller through ``current_context()``. Errors
are answered in the service's OpenStack fault shape: ``RpcError`` by its ``http_status``,
invalid requests as 400, anything unexpected as a generic 500 (the traceback is logged).

``run_app`` checks what the process cannot serve without before it listens: the gateway's
public key (for an app that verifies identities) and the database. A failed check is a
``StartupError``: one line on stderr, exit status 1 (``chassis.startup``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response

from ..errors import RpcError, ServiceUnavailable
from .db import ping_db
from .faults import FaultFormatter, fault_bytes, nova_fault
from .idempotency import IdempotencyMiddleware
from .identity import IdentityVerifier
from .logging import configure_logging
from .middleware import IdentityMiddleware, MetricsMiddleware, RequestContextMiddleware
from .plugins import Extension, load_extensions, mount_extensions
from .runtime import ServiceRuntime, lifespan
from .settings import ServiceSettings
from .startup import check_database, load_identity_key

log = logging.getLogger(__name__)


def make_app(
    settings: ServiceSettings,
    runtime: ServiceRuntime,
    *,
    title: str,
    version: str,
    routers: Iterable[APIRouter] = (),
    fault_formatter: FaultFormatter | None = None,
    public_paths: Iterable[str] = (),
    verifier: IdentityVerifier | None = None,
    extensions_prefix: str = "",
    builtin_extensions: Sequence[Extension] = (),
) -> FastAPI:
    """A service's FastAPI app; ``verifier`` defaults to the key at the settings' path.

    Extensions named in ``settings.extensions`` are loaded from entry points here, so a
    missing one stops the start-up with a message naming what is installed.
    """
    formatter = fault_formatter or nova_fault
    get_verifier = (
        (lambda: verifier)
        if verifier is not None
        else key_file_verifier(settings.identity_key_file)
    )
    middleware = [
        Middleware(MetricsMiddleware),
        Middleware(RequestContextMiddleware, fault_formatter=formatter),
        Middleware(
            IdentityMiddleware,
            verifier=get_verifier,
            public_paths=public_paths,
            fault_formatter=formatter,
        ),
    ]
    if runtime.has_database:
        # Inside the identity layer: keys are kept per project.
        middleware.append(
            Middleware(IdempotencyMiddleware, sessions=runtime.sessions, fault_formatter=formatter)
        )
    app = FastAPI(title=title, version=version, lifespan=lifespan(runtime), middleware=middleware)
    # OpenStack clients expect 404 for ".../volumes/" (an empty id), not a redirect.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.runtime = runtime
    # The key run_app checks before serving; none when every path is public (the gateway).
    verifies = verifier is None and "/*" not in set(public_paths)
    app.state.identity_key_file = settings.identity_key_file if verifies else None
    install_fault_handlers(app, formatter)
    app.include_router(health_router(runtime))
    for router in routers:
        app.include_router(router)
    mount_extensions(
        app,
        load_extensions(settings.service_name, settings.extensions),
        prefix=extensions_prefix,
        builtin=builtin_extensions,
    )
    return app


def key_file_verifier(path: Path) -> Callable[[], IdentityVerifier]:
    """Loads the gateway's public key on first use, so a service may start before the gateway."""
    loaded: list[IdentityVerifier] = []

    def get() -> IdentityVerifier:
        if not loaded:
            try:
                loaded.append(IdentityVerifier.from_file(path))
            except (OSError, ValueError) as exc:
                log.error("identity key %s not usable: %s", path, exc)
                raise ServiceUnavailable("Identity verification is not available yet.") from None
        return loaded[0]

    return get


def health_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        if runtime.has_database:
            checks["database"] = "ok" if await ping_db(runtime.engine) else "unavailable"
        checks["broker"] = "ok" if runtime.broker.is_connected() else "unavailable"
        ready = all(state == "ok" for state in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def install_fault_handlers(app: FastAPI, formatter: FaultFormatter) -> None:
    """Answer known errors in the service's fault shape (unexpected ones: the middleware)."""

    def fault(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response(
            fault_bytes(formatter, status, message),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )

    async def on_rpc_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RpcError)
        if exc.http_status >= 500:
            log.warning("request failed: %s: %s", exc.code, exc.message)
        return fault(exc.http_status, exc.message)

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return fault(400, validation_message(exc))

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return fault(exc.status_code, str(exc.detail), exc.headers)

    app.add_exception_handler(RpcError, on_rpc_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def validation_message(exc: RequestValidationError, limit: int = 5) -> str:
    """``Invalid input for port.name: Field required; ...`` from pydantic's error list."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = [str(p) for p in err.get("loc", ())]
        # "body" / "query" / "path" say where, not what: keep the field path only.
        field = ".".join(loc[1:]) if len(loc) > 1 else "request body"
        if err.get("type") == "json_invalid":
            field = "request body"  # its location is a character offset
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "Invalid input for " + "; ".join(parts) if parts else "Invalid input."


async def check_startup(app: FastAPI) -> None:
    """What the app cannot serve without, checked before it listens (``StartupError``).

    The services load the key lazily in requests (``key_file_verifier``); a process that
    would answer every request with 503 must not start at all.
    """
    settings: ServiceSettings = app.state.settings
    runtime: ServiceRuntime = app.state.runtime
    key_file = getattr(app.state, "identity_key_file", None)
    if key_file is not None:
        load_identity_key(IdentityVerifier, key_file, settings, "identity_public_key_path")
    if runtime.has_database:
        await check_database(settings)


def run_app(app: FastAPI, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Check, then serve ``app`` with uvicorn, logging through ``configure_logging`` (blocks).

    ``uvicorn_options`` add to the server's (the gateway's TLS files and client deadlines).
    """
    import uvicorn

    configure_logging(
        settings.service_name, settings.log_level, settings.log_json, host=settings.host
    )
    asyncio.run(check_startup(app))
    # Everything imported and built so far lives as long as the process: out of the
    # collector's sight, a full collection no longer walks it (it took ~50-80 ms, a pause
    # every request in flight waited for).
    gc.freeze()
    # log_config=None: keep our JSON handler instead of uvicorn's own formatters.
    # Long-lived responses (event streams, downloads) must not hold a shutdown for ever.
    uvicorn.run(
        app,
        host=settings.bind_host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        **uvicorn_options,
    )
