"""Error bodies in the shape each OpenStack API uses, chosen per service.

    nova_fault(404, "Server x could not be found.")
    # {"itemNotFound": {"code": 404, "message": "Server x could not be found."}}
    neutron_fault(409, "IP address in use")
    # {"NeutronError": {"type": "HTTPConflict", "message": "IP address in use", "detail": ""}}
    keystone_fault(401, "The request you have made requires authentication.")
    # {"error": {"code": 401, "title": "Unauthorized", "message": "..."}}

A formatter is any ``(status, message) -> dict``; ``make_app`` takes one and uses it for
every error it answers, including the ones raised before a route runs (401, 404, 500).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson

FaultFormatter = Callable[[int, str], dict[str, Any]]

# Nova's and Cinder's names (nova/api/openstack/wsgi.py Fault); anything else 4xx/5xx below.
_NOVA_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# Neutron answers webob's exception names when no domain exception names the fault.
_NEUTRON_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    413: "HTTPRequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType",
    429: "HTTPTooManyRequests",
    500: "HTTPInternalServerError",
    501: "HTTPNotImplemented",
    503: "HTTPServiceUnavailable",
    504: "HTTPGatewayTimeout",
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def nova_fault(status: int, message: str) -> dict[str, Any]:
    name = _NOVA_NAMES.get(status, "computeFault" if status >= 500 else "badRequest")
    return {name: {"code": status, "message": message}}


def neutron_fault(status: int, message: str) -> dict[str, Any]:
    name = _NEUTRON_TYPES.get(status) or f"HTTP{_phrase(status).replace(' ', '')}"
    return {"NeutronError": {"type": name, "message": message, "detail": ""}}


def keystone_fault(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "title": _phrase(status), "message": message}}


DEFAULT_FAULT_FORMATTER: FaultFormatter = nova_fault


def fault_bytes(formatter: FaultFormatter, status: int, message: str) -> bytes:
    return orjson.dumps(formatter(status, message))
