"""Helpers every resource shares: ownership, standard attributes, insert-or-retry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.context import RequestContext

from ..db.models import utcnow
from .errors import forbidden, invalid


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction, committed on success; savepoints inside it are safe on SQLite too."""
    async with sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            # pysqlite defers BEGIN to the first write, so a SAVEPOINT issued first would be
            # the outermost transaction and its RELEASE a commit; IMMEDIATE also avoids
            # the read-then-write upgrade that SQLite answers with "database is locked".
            await session.execute(sql("BEGIN IMMEDIATE"))
        yield session


def new_id() -> str:
    return str(uuid.uuid4())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_of(ctx: RequestContext, body: dict[str, Any]) -> str:
    """The project a new resource belongs to: the caller's, or any one an admin names."""
    requested = body.get("project_id") or body.get("tenant_id")
    if requested and requested != ctx.project_id:
        if not ctx.is_admin:
            raise forbidden("Only an admin may create resources for another project.")
        return str(requested)
    if not ctx.project_id:
        raise invalid("A project-scoped token is required.")
    return ctx.project_id


def owns(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or ctx.project_id == project_id


def admin_only(ctx: RequestContext, body: dict[str, Any], *keys: str) -> None:
    """Neutron answers 403 when a non-admin sets an admin-only attribute."""
    given = [k for k in keys if k in body]
    if given and not ctx.is_admin:
        raise forbidden(f"Only an admin may set {', '.join(given)}.")


def standard_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "tags": [],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "revision_number": row.revision_number,
    }


def touch(row: Any) -> None:
    row.updated_at = utcnow()
    row.revision_number += 1


def text(body: dict[str, Any], key: str, default: str = "", limit: int = 255) -> str:
    value = body.get(key, default)
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(f"Invalid input for {key}: expected a string of at most {limit} characters.")
    return value


def flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise invalid(f"Invalid input for {key}: expected a boolean.")
    return value


async def try_insert(session: AsyncSession, row: Any) -> bool:
    """Insert ``row`` under a savepoint; False when a unique constraint refused it."""
    try:
        async with session.begin_nested():
            session.add(row)
        return True
    except IntegrityError:
        return False
