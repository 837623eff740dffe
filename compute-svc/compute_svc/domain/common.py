"""Helpers every resource shares: one transaction, ids, times, input checks."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Any

# One transaction per request, shared by every service (its SQLite rules live there).
from common_rpc.chassis.db import transaction as transaction
from common_rpc.chassis.db import try_insert as try_insert

from .errors import bad_field, invalid


def new_id() -> str:
    return str(uuid.uuid4())


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def text(body: dict[str, Any], key: str, *, default: str = "", limit: int = 255) -> str:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(
            f"Invalid input for field/attribute {key}: expected a string of at most "
            f"{limit} characters."
        )
    return value


def name_of(body: dict[str, Any], key: str = "name") -> str:
    value = text(body, key).strip()
    if not value:
        raise invalid(f"Invalid input for field/attribute {key}: it must not be empty.")
    return value


NAME_REASON = "printable characters. Can not start or end with whitespace."


def _printable(char: str, *, space: bool = True) -> bool:
    """A character Nova's ``name`` format allows (printable, in the BMP); ``space``: the
    Zs spaces too (not at either end)."""
    if ord(char) >= 0xFFFF:
        return False
    category = unicodedata.category(char)
    if category.startswith("C") or (category.startswith("Z") and category != "Zs"):
        return False
    return space or category != "Zs"


def nova_name(body: dict[str, Any], key: str = "name") -> str:
    """Nova's ``name`` (servers, key names): a string of 1 to 255 printable characters, no
    space at either end, checked in its schema's order and refused with its messages."""
    value = body.get(key)
    if not isinstance(value, str):
        raise bad_field(key, value, f"{value!r} is not of type 'string'")
    if value and not (
        all(map(_printable, value))
        and _printable(value[0], space=False)
        and _printable(value[-1], space=False)
    ):
        raise invalid(f"An invalid 'name' value was provided. The name must be: {NAME_REASON}")
    if not value:
        raise bad_field(key, value, "'' should be non-empty")
    if len(value) > 255:
        raise bad_field(key, value, f"{value!r} is too long")
    return value


def integer(body: dict[str, Any], key: str, *, default: int | None = None, low: int = 0) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(f"Invalid input for field/attribute {key}: expected an integer >= {low}.")
    return value


def flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if not isinstance(value, bool):
        raise invalid(f"Invalid input for field/attribute {key}: expected a boolean.")
    return value


def envelope(body: Any, key: str) -> dict[str, Any]:
    """The resource inside ``{"server": {...}}``; 400 when the envelope is missing."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise invalid(f"Invalid input: expected an object under {key!r}.")
    return body[key]
