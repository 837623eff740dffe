"""Neutron's fault types as common-rpc errors: ``details["type"]`` names the fault."""

from __future__ import annotations

from common_rpc.errors import Conflict, Forbidden, Invalid, NotFound


def not_found(kind: str, resource_id: str) -> NotFound:
    """``NetworkNotFound`` etc.; also what another project's resource answers."""
    label = {"SecurityGroupRule": "Security group rule", "SecurityGroup": "Security group"}
    return NotFound(
        f"{label.get(kind, kind)} {resource_id} could not be found.",
        details={"type": f"{kind}NotFound"},
    )


def conflict(fault_type: str, message: str) -> Conflict:
    return Conflict(message, details={"type": fault_type})


def invalid(message: str, fault_type: str = "HTTPBadRequest") -> Invalid:
    return Invalid(message, details={"type": fault_type})


def forbidden(message: str) -> Forbidden:
    return Forbidden(message, details={"type": "PolicyNotAuthorized"})


def over_quota(resource: str, _requested: int = 1, _in_use: int = 0, _limit: int = 0) -> Conflict:
    """Neutron's 409 ``OverQuota``: it names the resources, not the numbers."""
    return conflict("OverQuota", f"Quota exceeded for resources: [{resource!r}].")
