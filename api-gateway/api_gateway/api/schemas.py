"""Request bodies of the identity API as clients send them, and Keystone's 400 for one that
does not fit.

    ProjectCreateBody.model_validate({"project": {"name": "p2", "enabled": True}})
    install(app)      # a body that does not fit is answered in Keystone's words

The specs inside (``Auth``, ``ProjectCreate``, ...) are ``domain/schemas.py``'s. A body
that does not fit is answered in Keystone's words (``keystone_validation_message``): its
JSON-schema message for the first problem, as ``Invalid input for field/attribute name.
Value: . '' should be non-empty`` for projects and users (Keystone's request body
schemas) and ``Invalid input for field 'identity/methods': ...`` for token requests (its
older validator, whose message goes on with jsonschema's dump of the schema; the first
line is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from common_rpc.chassis.faults import fault_bytes, keystone_fault

from ..domain.schemas import (
    ApplicationCredentialCreate,
    Auth,
    Body,
    EndpointCreate,
    EndpointUpdate,
    GroupCreate,
    GroupUpdate,
    PasswordChange,
    ProjectCreate,
    ProjectUpdate,
    RegionCreate,
    RegionUpdate,
    RoleCreate,
    RoleUpdate,
    ServiceCreate,
    ServiceUpdate,
    UserCreate,
    UserUpdate,
)


class AuthRequest(Body):
    auth: Auth


class ProjectCreateBody(Body):
    project: ProjectCreate


class ProjectUpdateBody(Body):
    project: ProjectUpdate


class UserCreateBody(Body):
    user: UserCreate


class UserUpdateBody(Body):
    user: UserUpdate


class RegionCreateBody(Body):
    # Keystone accepts an empty body for a region whose id it generates.
    region: RegionCreate = RegionCreate()


class RegionUpdateBody(Body):
    region: RegionUpdate


class ServiceCreateBody(Body):
    service: ServiceCreate


class ServiceUpdateBody(Body):
    service: ServiceUpdate


class EndpointCreateBody(Body):
    endpoint: EndpointCreate


class EndpointUpdateBody(Body):
    endpoint: EndpointUpdate


class PasswordChangeBody(Body):
    user: PasswordChange


class ApplicationCredentialCreateBody(Body):
    application_credential: ApplicationCredentialCreate


class RoleCreateBody(Body):
    role: RoleCreate


class RoleUpdateBody(Body):
    role: RoleUpdate


class GroupCreateBody(Body):
    group: GroupCreate


class GroupUpdateBody(Body):
    group: GroupUpdate


# --- faults ---------------------------------------------------------------------------------

EXPECTING_VALID_JSON = (
    "Expecting to find valid JSON in request body. The server could not comply with the "
    "request since it is either malformed or otherwise incorrect. The client is assumed to "
    "be in error."
)
_JSON_TYPES = {
    "string_type": "string",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "list_type": "array",
    "model_type": "object",
    "model_attributes_type": "object",
    "dict_type": "object",
    "int_type": "integer",
    "int_parsing": "integer",
}


def _schema_message(error: dict[str, Any], field: str) -> str:
    """jsonschema's words for one pydantic error (the validator Keystone runs)."""
    kind, value = error.get("type", ""), error.get("input")
    if kind == "missing":
        return f"{field!r} is a required property"
    if kind in ("string_too_short", "too_short"):
        short = (
            "should be non-empty"
            if error.get("ctx", {}).get("min_length") == 1
            else ("is too short")
        )
        return f"{value!r} {short}"
    if kind in ("string_too_long", "too_long"):
        return f"{value!r} is too long"
    if kind in _JSON_TYPES:
        return f"{value!r} is not of type {_JSON_TYPES[kind]!r}"
    return f"{value!r} is not valid under any of the given schemas"


def _field_path(loc: Sequence[Any]) -> list[str]:
    # Union members show up as class names or literal[...] tags: not fields of the body.
    return [str(p) for p in loc if not str(p)[:1].isupper() and "[" not in str(p)]


def keystone_validation_message(errors: Sequence[dict[str, Any]]) -> str:
    """Keystone's 400 text for a request body that does not fit (the first problem)."""
    error = errors[0]
    loc = list(error.get("loc", ()))
    if loc[:1] != ["body"]:
        where = ".".join(map(str, loc[1:]))
        return f"Invalid input for query parameters {where}. Value: {error.get('input')}. " + str(
            error.get("msg")
        )
    path = _field_path(loc[1:])
    if error.get("type") == "json_invalid" or not path:
        # Not JSON, or not a JSON object: Keystone refuses the body before any schema.
        return EXPECTING_VALID_JSON
    missing = error.get("type") == "missing"
    container, name = path[:-1], path[-1]
    message = _schema_message(error, name)
    if path == ["auth"] and missing:
        return (
            "Expecting to find auth in request body. The server could not comply with the "
            "request since it is either malformed or otherwise incorrect. The client is "
            "assumed to be in error."
        )
    if path[0] == "auth":
        # Keystone's older validator, on the body's "auth" object.
        where = (container if missing else path)[1:]
        return f"Invalid input for field '{'/'.join(where)}': {message}" if where else message
    if missing and not container:
        return message
    field = container[-1] if missing else name
    return f"Invalid input for field/attribute {field}. Value: {error.get('input')}. {message}"


def install(app: FastAPI) -> None:
    """Bodies that do not fit answer Keystone's words, not the chassis' generic ones."""
    app.add_exception_handler(RequestValidationError, keystone_validation_fault)


async def keystone_validation_fault(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = keystone_validation_message(list(exc.errors()))
    return Response(
        fault_bytes(keystone_fault, 400, message), status_code=400, media_type="application/json"
    )
