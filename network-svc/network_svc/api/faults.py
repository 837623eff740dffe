"""Neutron error bodies: the fault ``type`` comes from the error's ``details["type"]``.

{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from common_rpc.chassis.faults import neutron_fault
from common_rpc.errors import RpcError

log = logging.getLogger(__name__)


def neutron_body(exc: RpcError) -> dict[str, object]:
    body = neutron_fault(exc.http_status, exc.message)
    fault_type = exc.details.get("type")
    if isinstance(fault_type, str) and fault_type:
        body["NeutronError"]["type"] = fault_type
    return body


def install(app: FastAPI) -> None:
    """Replace the chassis' RpcError handler with one that keeps the fault type."""

    async def on_rpc_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RpcError)
        if exc.http_status >= 500:
            log.warning("request failed: %s: %s", exc.code, exc.message)
        return JSONResponse(neutron_body(exc), status_code=exc.http_status)

    app.add_exception_handler(RpcError, on_rpc_error)
