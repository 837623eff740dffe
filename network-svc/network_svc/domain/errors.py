"""Neutron's fault types as common-rpc errors: ``details["type"]`` names the fault.

The messages are Neutron's own texts (neutron_lib.exceptions, neutron.extensions, the
API layer's attribute checks): clients and Tempest match on them.

    raise not_found("Subnet", subnet_id)       # 404 SubnetNotFound
    raise invalid_input("Gateway is not valid on subnet")
    # 400 InvalidInput "Invalid input for operation: Gateway is not valid on subnet."
"""

from __future__ import annotations

from common_rpc.errors import Conflict, Forbidden, Invalid, NotFound

# Neutron's NotFound texts per resource (some end without a period, as Neutron's do).
_NOT_FOUND = {
    "Router": "Router {id} could not be found",
    "FloatingIP": "Floating IP {id} could not be found",
    "SecurityGroup": "Security group {id} does not exist",
    "SecurityGroupRule": "Security group rule {id} does not exist",
}


def not_found(kind: str, resource_id: str) -> NotFound:
    """``NetworkNotFound`` etc.; also what another project's resource answers."""
    template = _NOT_FOUND.get(kind, "{kind} {id} could not be found.")
    return NotFound(template.format(kind=kind, id=resource_id), details={"type": f"{kind}NotFound"})


def conflict(fault_type: str, message: str) -> Conflict:
    return Conflict(message, details={"type": fault_type})


def invalid(message: str, fault_type: str = "HTTPBadRequest") -> Invalid:
    return Invalid(message, details={"type": fault_type})


def invalid_input(error_message: str, fault_type: str = "InvalidInput") -> Invalid:
    """neutron_lib's ``InvalidInput``: the plugin refused a value."""
    return invalid(f"Invalid input for operation: {error_message}.", fault_type)


def bad_attribute(attribute: str, reason: str) -> Invalid:
    """The API layer's attribute validation (webob ``HTTPBadRequest``)."""
    return invalid(f"Invalid input for {attribute}. Reason: {reason}.")


def bad_request(resource: str, message: str) -> Invalid:
    """neutron_lib's ``BadRequest``: ``Bad router request: ...``."""
    return invalid(f"Bad {resource} request: {message}.", "BadRequest")


def required(attribute: str) -> Invalid:
    return invalid(f"Failed to parse request. Required attribute '{attribute}' not specified")


def read_only(attribute: str) -> Invalid:
    return invalid(f"Cannot update read-only attribute {attribute}")


def forbidden(message: str) -> Forbidden:
    return Forbidden(message, details={"type": "PolicyNotAuthorized"})


def policy_denied(action: str, *attributes: str) -> Forbidden:
    """oslo.policy's refusal as Neutron words it: the rule of the action, and of each
    attribute the request set that only an admin (or the network's owner) may set."""
    rules = [f"rule:{action}", *(f"rule:{action}:{name}" for name in attributes)]
    text = rules[0] if len(rules) == 1 else "(" + " and ".join(rules) + ")"
    return forbidden(f"{text} is disallowed by policy")


def over_quota(resource: str, _requested: int = 1, _in_use: int = 0, _limit: int = 0) -> Conflict:
    """Neutron's 409 ``OverQuota``: it names the resources, not the numbers."""
    return conflict("OverQuota", f"Quota exceeded for resources: [{resource!r}].")
