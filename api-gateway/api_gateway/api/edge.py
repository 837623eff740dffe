"""What the gateway's tenant-facing endpoints share: the token, request ids, faults.

    token = read_token(scope["headers"])             # X-Auth-Token, or None
    rid = request_id(scope["headers"])               # the client's req-<uuid>, or a new one
    await send_fault(send, FAULTS["network"], 401, UNAUTHENTICATED)
    return fault_response(FAULTS["gateway"], 403, "...")   # from a FastAPI route

Each API answers errors in its own OpenStack shape: nova's for compute and volume,
neutron's for network, glance's flat one for image, keystone's for the gateway itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from common_rpc.chassis.faults import (
    FaultFormatter,
    fault_bytes,
    keystone_fault,
    neutron_fault,
    nova_fault,
)
from common_rpc.context import new_request_id

AUTH_TOKEN_HEADER = "X-Auth-Token"
UNAUTHENTICATED = "The request you have made requires authentication."

_TOKEN = AUTH_TOKEN_HEADER.lower().encode()
_REQUEST_ID_HEADERS = (b"x-request-id", b"x-openstack-request-id")
# OpenStack's shape (req-<uuid4>); anything else is replaced, so logs cannot be forged.
_REQUEST_ID = re.compile(rb"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def image_fault(status: int, message: str) -> dict[str, Any]:
    """Glance's error body: ``{"code": 404, "title": "Not Found", "message": "..."}``."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {"code": status, "title": title, "message": message}


FAULTS: dict[str, FaultFormatter] = {
    "compute": nova_fault,
    "volume": nova_fault,
    "network": neutron_fault,
    "image": image_fault,
    "gateway": keystone_fault,
}


def read_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The ``X-Auth-Token`` of an ASGI request, or None when absent or empty."""
    for name, value in headers:
        if name == _TOKEN:
            return value.decode("latin-1").strip() or None
    return None


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's well-formed ``X-Request-Id`` (or ``X-Openstack-Request-Id``), else a new one."""
    for name, value in headers:
        if name in _REQUEST_ID_HEADERS and _REQUEST_ID.match(value):
            return value.decode()
    return new_request_id()


def fault_response(
    formatter: FaultFormatter, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        fault_bytes(formatter, status, message),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
