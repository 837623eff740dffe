"""Nova's and Glance's faults as common-rpc errors (the HTTP status picks the body key)."""

from __future__ import annotations

from common_rpc.errors import Conflict, Forbidden, Invalid, NotFound


def not_found(kind: str, resource_id: str) -> NotFound:
    """Also what another project's resource answers (never 403)."""
    return NotFound(f"{kind} {resource_id} could not be found.")


def invalid(message: str) -> Invalid:
    return Invalid(message)


def conflict(message: str) -> Conflict:
    return Conflict(message)


def forbidden(message: str = "Policy doesn't allow this operation to be performed.") -> Forbidden:
    return Forbidden(message)


def bad_field(key: str, value: object, reason: str) -> Invalid:
    """Nova's schema refusal: ``Invalid input for field/attribute accessIPv4. Value: 1.2.3.
    '1.2.3' is not a 'ipv4'`` (``reason`` in jsonschema's words)."""
    return Invalid(f"Invalid input for field/attribute {key}. Value: {value}. {reason}")
