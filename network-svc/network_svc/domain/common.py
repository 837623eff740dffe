"""Helpers every resource shares: ownership, standard attributes, insert-or-retry."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import column, inspect, table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

# One transaction per request, shared by every service (its SQLite rules live there).
from common_rpc.chassis.db import transaction as transaction
from common_rpc.context import RequestContext

from ..db.models import utcnow
from .errors import bad_attribute, invalid, invalid_input, policy_denied


def new_id() -> str:
    return str(uuid.uuid4())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_of(ctx: RequestContext, body: dict[str, Any]) -> str:
    """The project a new resource belongs to: the caller's, or any one an admin names."""
    project, tenant = body.get("project_id"), body.get("tenant_id")
    if project and tenant and project != tenant:
        raise invalid("'project_id' and 'tenant_id' do not match")
    requested = project or tenant
    if requested and requested != ctx.project_id:
        if not ctx.is_admin:
            raise invalid(
                "Specifying 'project_id' other than the authenticated project in request "
                "is not allowed for the current user."
            )
        return str(requested)
    if not ctx.project_id:
        raise invalid("A project-scoped token is required.")
    return ctx.project_id


def owns(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or ctx.project_id == project_id


def admin_only(ctx: RequestContext, action: str, body: dict[str, Any], *keys: str) -> None:
    """Neutron answers 403 when a non-admin sets an admin-only attribute."""
    given = [k for k in keys if k in body]
    if given and not ctx.is_admin:
        raise policy_denied(action, *given)


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
    if not isinstance(value, str):
        raise bad_attribute(key, f"'{value}' is not a valid string")
    if len(value) > limit:
        raise bad_attribute(key, f"'{value}' exceeds maximum length of {limit}")
    return value


# oslo's bool_from_string(strict=True), which Neutron's convert_to_boolean uses.
_BOOLEANS = {
    **dict.fromkeys(("1", "t", "true", "on", "y", "yes"), True),
    **dict.fromkeys(("0", "f", "false", "off", "n", "no"), False),
}


def flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _BOOLEANS:
        return _BOOLEANS[str(value).strip().lower()]
    raise invalid_input(f"'{value}' cannot be converted to boolean")


_INSERT = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


@functools.cache
def _insert_or_nothing(dialect: str, target: Any) -> Any:
    """One statement per table, its values bound at execution: on the hot path of every
    port create, building ``insert().values()`` cost more than running it."""
    return _INSERT[dialect](target).on_conflict_do_nothing()


async def try_insert(session: AsyncSession, row: Any) -> bool:
    """Insert ``row``; False when a unique key already holds its values.

    ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL) answers in one statement
    what a savepoint, an insert and a release would; on success the row joins the session
    as persistent, with its column defaults filled in, and no read-back.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERT:
        try:
            async with session.begin_nested():
                session.add(row)
            return True
        except IntegrityError:
            return False
    mapper = inspect(row).mapper
    values: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        value = getattr(row, attr.key)
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
            setattr(row, attr.key, value)
        elif value is None and column.default is not None and column.default.is_callable:
            value = column.default.arg(None)
            setattr(row, attr.key, value)
        values[column.key] = value
    result = await session.execute(_insert_or_nothing(dialect, mapper.local_table), values)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    make_transient_to_detached(row)
    session.add(row)
    return True


# The generation columns (migration network_0003) are read and bumped with plain SQL: the
# desired state of a host changes whenever they move, never through the ORM attributes.
GENERATIONS = {
    name: table(name, column("id"), column("generation")) for name in ("networks", "ports")
}
