"""Request bodies of the identity API; a body that does not fit is a 400 in Keystone's shape.

    AuthRequest.model_validate({"auth": {"identity": {"methods": ["password"], "password":
        {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "pw"}}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
    ProjectCreateBody.model_validate({"project": {"name": "p2", "enabled": True}})

Unknown keys are ignored (clients send extras such as ``tags`` or ``options``). On
updates, ``model_fields_set`` tells which attributes the client gave.

A body that does not fit is answered in Keystone's words (``keystone_validation_message``):
its JSON-schema message for the first problem, as ``Invalid input for field/attribute
name. Value: . '' should be non-empty`` for projects and users (Keystone's request body
schemas) and ``Invalid input for field 'identity/methods': ...`` for token requests (its
older validator, whose message goes on with jsonschema's dump of the schema; the first
line is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..domain.passwords import MAX_PASSWORD_LENGTH

Name = Annotated[str, Field(min_length=1, max_length=255)]
ProjectName = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(max_length=MAX_PASSWORD_LENGTH)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- POST /v3/auth/tokens --------------------------------------------------------------


class DomainRef(Body):
    id: Id | None = None
    name: Name | None = None


class UserRef(Body):
    id: Id | None = None
    name: Name | None = None
    domain: DomainRef | None = None
    password: Password | None = None


class PasswordMethod(Body):
    user: UserRef


class TokenMethod(Body):
    id: Annotated[str, Field(min_length=1, max_length=512)]


class Identity(Body):
    # Other methods' payloads are kept: Keystone asks for each named method's payload
    # before it says a method is not supported.
    model_config = ConfigDict(extra="allow")

    methods: Annotated[list[str], Field(min_length=1)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None

    def has_payload(self, method: str) -> bool:
        return getattr(self, method, None) is not None or method in (self.model_extra or {})


class ProjectRef(Body):
    id: Id | None = None
    name: ProjectName | None = None
    domain: DomainRef | None = None


class Scope(Body):
    project: ProjectRef | None = None
    domain: DomainRef | None = None
    system: dict[str, Any] | None = None


class Auth(Body):
    identity: Identity
    # "unscoped" asks for an unscoped token even when the user has a default project.
    scope: Scope | Literal["unscoped"] | None = None


class AuthRequest(Body):
    auth: Auth


# --- projects -----------------------------------------------------------------------------


class ProjectCreate(Body):
    name: ProjectName
    description: str | None = None
    enabled: StrictBool = True
    domain_id: Id | None = None
    is_domain: StrictBool = False
    parent_id: Id | None = None


class ProjectCreateBody(Body):
    project: ProjectCreate


class ProjectUpdate(Body):
    name: ProjectName | None = None
    description: str | None = None
    enabled: StrictBool | None = None


class ProjectUpdateBody(Body):
    project: ProjectUpdate


# --- users ----------------------------------------------------------------------------------


class UserCreate(Body):
    name: Name
    password: Password | None = None
    enabled: StrictBool = True
    domain_id: Id | None = None
    default_project_id: Id | None = None
    email: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None


class UserCreateBody(Body):
    user: UserCreate


class UserUpdate(Body):
    name: Name | None = None
    password: Password | None = None
    enabled: StrictBool | None = None
    default_project_id: Id | None = None
    email: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None


class UserUpdateBody(Body):
    user: UserUpdate


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
