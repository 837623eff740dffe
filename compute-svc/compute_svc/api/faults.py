"""Error bodies per API: Nova's keyed fault for Compute, Glance's flat one under ``/image``.

{"itemNotFound": {"code": 404, "message": "..."}}           # /v2.1/...
{"code": 404, "title": "Not Found", "message": "..."}        # /image/v2/...
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from common_rpc.chassis.app import validation_message
from common_rpc.chassis.faults import nova_fault
from common_rpc.errors import RpcError

log = logging.getLogger(__name__)


def glance_fault(status: int, message: str) -> dict[str, Any]:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {"code": status, "title": title, "message": message}


def body_for(path: str, status: int, message: str) -> dict[str, Any]:
    if path == "/image" or path.startswith("/image/"):
        return glance_fault(status, message)
    return nova_fault(status, message)


def install(app: FastAPI) -> None:
    """Replace the chassis' handlers with ones that pick the body by path."""

    def answer(request: Request, status: int, message: str, headers: Any = None) -> JSONResponse:
        return JSONResponse(body_for(request.url.path, status, message), status, headers=headers)

    async def on_rpc_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RpcError)
        if exc.http_status >= 500:
            log.warning("request failed: %s: %s", exc.code, exc.message)
        return answer(request, exc.http_status, exc.message)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return answer(request, 400, validation_message(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return answer(request, exc.status_code, str(exc.detail), exc.headers)

    app.add_exception_handler(RpcError, on_rpc_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
