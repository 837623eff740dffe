"""Helpers every resource shares: one transaction, ids, times, input checks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

# One transaction per request, shared by every service (its SQLite rules live there).
from common_rpc.chassis.db import transaction as transaction

from .errors import invalid


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


async def try_insert(session: AsyncSession, row: Any) -> bool:
    """Insert ``row`` under a savepoint; False when a unique constraint refused it."""
    try:
        async with session.begin_nested():
            session.add(row)
        return True
    except IntegrityError:
        return False
