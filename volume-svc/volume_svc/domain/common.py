"""Helpers every resource shares: the transaction, ids, times and input checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# One transaction per request, shared by every service (its SQLite rules live there).
from common_rpc.chassis.db import transaction as transaction
from common_rpc.context import RequestContext

from .errors import invalid


def new_id() -> str:
    return str(uuid.uuid4())


def deadline(seconds: float) -> datetime:
    """When a transitional state started now expires (the sweeper acts after it)."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000") if moment else None


def project_of(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise invalid("A project-scoped token is required.")
    return ctx.project_id


def owns(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or ctx.project_id == project_id


def text(body: dict[str, Any], *keys: str, limit: int = 255) -> str | None:
    """The first of ``keys`` present (Cinder accepts ``display_name`` for ``name``)."""
    for key in keys:
        if key in body:
            value = body[key]
            if value is None:
                return ""
            if not isinstance(value, str) or len(value) > limit:
                raise invalid(
                    f"Invalid input for field/attribute {key}: expected a string "
                    f"of at most {limit} characters."
                )
            return value
    return None


def metadata(body: dict[str, Any]) -> dict[str, str] | None:
    value = body.get("metadata")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 255 and len(v) <= 255
        for k, v in value.items()
    ):
        raise invalid("Invalid input for field/attribute metadata: expected string pairs.")
    return dict(value)


def size_of(value: Any, limit: int, field: str = "size") -> int:
    """A positive whole number of GiB up to ``limit``; "2" is accepted like Cinder does."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"Invalid input for field/attribute {field}: must be an integer.")
    if value <= 0:
        raise invalid(f"Invalid input for field/attribute {field}: must be greater than 0.")
    if value > limit:
        raise invalid(f"Invalid input for field/attribute {field}: must be at most {limit}.")
    return value
