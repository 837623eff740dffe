"""Helpers every resource shares: the transaction, ids, times and input checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.context import RequestContext

from .errors import invalid


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction, committed on success; on SQLite it takes the write lock up front.

    pysqlite defers BEGIN to the first write, so a read-then-write (quota check, then
    insert) would race; ``BEGIN IMMEDIATE`` serialises writers like a row lock would.
    """
    async with sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(sql("BEGIN IMMEDIATE"))
        yield session


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
