"""Request checks with Cinder's texts: its JSON-schema faults and its ``InvalidInput``.

Cinder validates a request body against a JSON schema first and answers the first
failure as ``Invalid input for field/attribute <field>. Value: <value>. <jsonschema's
message>``; clients and Tempest see these words, so the checks here produce them.

    size = volume_size(body.get("size"), "size", allow_null=True)   # '#$%' -> 400
    uuid_or_null(body.get("snapshot_id"), "snapshot_id")
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from common_rpc.errors import Invalid

# Cinder's DB_MAX_INT: the schema's maximum volume size.
DB_MAX_INT = 0x7FFFFFFF
SIZE_PATTERN = "^[0-9]+$"
# parameter_types.boolean's enum, in Cinder's order (its message lists them all).
BOOLEANS: tuple[bool | str, ...] = (
    True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f",
)  # fmt: skip
TRUE_WORDS = frozenset(str(b).lower() for b in BOOLEANS[: BOOLEANS.index(False)])


def field_error(field: str, value: Any, message: str) -> Invalid:
    """Cinder's schema fault for one field (400)."""
    return Invalid(f"Invalid input for field/attribute {field}. Value: {value}. {message}")


def invalid_input(reason: str) -> Invalid:
    """Cinder's ``InvalidInput`` (400)."""
    return Invalid(f"Invalid input received: {reason}")


def root(body: Any, name: str) -> None:
    """The body is an object with ``name``: Cinder's schema errors at the root have no
    field (``'metadata' is a required property``)."""
    if not isinstance(body, dict):
        raise Invalid(f"{body!r} is not of type 'object'")
    if name not in body:
        raise Invalid(f"{name!r} is a required property")


def required(container: str, value: Any, name: str) -> Invalid:
    return field_error(container, value, f"{name!r} is a required property")


def volume_size(value: Any, field: str, *, allow_null: bool = False) -> int | None:
    """``parameter_types.volume_size``: an integer or a string of digits, at least 1."""
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        types = "'integer', 'string'" + (", 'null'" if allow_null else "")
        raise field_error(field, value, f"{value!r} is not of type {types}")
    if isinstance(value, str) and not re.search(SIZE_PATTERN, value):
        raise field_error(field, value, f"{value!r} does not match {SIZE_PATTERN!r}")
    number = int(value)
    if number < 1:
        raise field_error(field, value, f"{number!r} is less than the minimum of 1")
    if number > DB_MAX_INT:
        raise field_error(field, value, f"{number!r} is greater than the maximum of {DB_MAX_INT}")
    return number


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def uuid_or_null(value: Any, field: str) -> str | None:
    """``optional_uuid`` / ``uuid_allow_null``: a UUID string or null (``oneOf``)."""
    if value is None:
        return None
    if not is_uuid(value):
        raise field_error(field, value, f"{value!r} is not valid under any of the given schemas")
    return str(value)


def boolean(value: Any, field: str) -> bool:
    """``parameter_types.boolean``: a JSON boolean or one of Cinder's words for one."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number or value not in BOOLEANS:
        raise field_error(field, value, f"{value!r} is not one of {list(BOOLEANS)!r}")
    return str(value).lower() in TRUE_WORDS


def status(value: Any, field: str, kind: str, allowed: tuple[str, ...]) -> str:
    """A status string checked by Cinder's format checker ``kind`` (``volume_status``)."""
    if not isinstance(value, str):
        raise field_error(field, value, f"{value!r} is not of type 'string'")
    if value.lower() not in allowed:
        raise field_error(field, value, f"{value!r} is not a {kind!r}")
    return value.lower()


# Metadata keys: the snapshot and volume metadata schemas' patternProperties.
METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
# Extra spec keys (``extra_specs_with_no_spaces_key``): no spaces.
SPEC_KEY = re.compile(r"^[a-zA-Z0-9-_:.]{1,255}$")


def additional(field: str, value: Any, extra: list[str]) -> Invalid:
    """jsonschema's ``additionalProperties: False`` message."""
    words = ", ".join(repr(k) for k in sorted(extra))
    verb = "was" if len(extra) == 1 else "were"
    return field_error(
        field, value, f"Additional properties are not allowed ({words} {verb} unexpected)"
    )


def string_map(
    value: Any,
    field: str,
    *,
    key: re.Pattern[str] = METADATA_KEY,
    nullable: bool = False,
    exactly_one: bool = False,
) -> dict[str, str | None]:
    """An object of string values up to 255 characters under keys matching ``key``
    (metadata, extra specs), with the messages of Cinder's schemas."""
    if not isinstance(value, dict):
        raise field_error(field, value, f"{value!r} is not of type 'object'")
    if exactly_one and len(value) < 1:
        raise field_error(field, value, f"{value!r} does not have enough properties")
    if exactly_one and len(value) > 1:
        raise field_error(field, value, f"{value!r} has too many properties")
    extra = [k for k in value if not key.match(k)]
    if extra:
        raise additional(field, value, extra)
    for name, item in value.items():
        if item is None and nullable:
            continue
        if not isinstance(item, str):
            kinds = "['string', 'null']" if nullable else "'string'"
            raise field_error(name, item, f"{item!r} is not of type {kinds}")
        if len(item) > 255:
            raise field_error(name, item, f"{item!r} is too long")
    return dict(value)
