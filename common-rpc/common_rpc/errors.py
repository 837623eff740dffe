"""Typed errors that cross process boundaries.

A handler raises ``NotFound("port p1 not found")``; the caller's ``call()`` raises the same
class with the same message. Errors travel by wire ``code``, never by Python path, and an
unexpected exception crosses as ``InternalError`` with a generic message: the traceback
stays in the remote log, out of anything a tenant can see.

    >>> err = error_from_wire(NotFound("no such port").to_wire())
    >>> type(err).__name__, str(err)
    ('NotFound', 'no such port')
"""

from __future__ import annotations

from typing import Any, ClassVar


class RpcError(Exception):
    """Base of every error common-rpc raises; ``code`` names it on the wire."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str = "", *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details or {}

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(RpcError):
    code = "not_found"
    http_status = 404


class Conflict(RpcError):
    code = "conflict"
    http_status = 409


class Invalid(RpcError):
    code = "invalid"
    http_status = 400


class Forbidden(RpcError):
    code = "forbidden"
    http_status = 403


class Unauthorized(RpcError):
    code = "unauthorized"
    http_status = 401


class QuotaExceeded(RpcError):
    code = "quota_exceeded"
    http_status = 413


class InternalError(RpcError):
    """Something failed on the remote side that it did not expect; details are in its log."""

    code = "internal"
    http_status = 500


class RpcTimeout(RpcError):
    """No reply within the deadline. The remote method may or may not have run."""

    code = "timeout"
    http_status = 504


class ServiceUnavailable(RpcError):
    code = "unavailable"
    http_status = 503


_BY_CODE: dict[str, type[RpcError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        Conflict,
        Invalid,
        Forbidden,
        Unauthorized,
        QuotaExceeded,
        InternalError,
        RpcTimeout,
        ServiceUnavailable,
    )
}


def error_from_wire(data: dict[str, Any]) -> RpcError:
    """Rebuild the typed error a remote handler raised (unknown codes become internal)."""
    cls = _BY_CODE.get(str(data.get("code")), InternalError)
    return cls(str(data.get("message") or cls.code), details=data.get("details") or {})
