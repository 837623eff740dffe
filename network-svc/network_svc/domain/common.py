"""Helpers every resource shares: ownership, standard attributes, insert-or-retry."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Any

# One transaction per request, shared by every service (its SQLite rules live there).
from common_rpc.chassis.db import transaction as transaction
from common_rpc.chassis.db import try_insert as try_insert
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
        "tags": sorted(row.tags or []),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "revision_number": row.revision_number,
    }


def touch(row: Any) -> None:
    row.updated_at = utcnow()
    row.revision_number += 1


UUID_LIKE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def text(body: dict[str, Any], key: str, default: str = "", limit: int = 255) -> str:
    """A name, description or device string: Neutron's lengths (255), and no control
    characters (a newline or escape in a name garbles every log and table it is shown in)."""
    value = body.get(key, default)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise bad_attribute(key, f"'{value}' is not a valid string")
    if len(value) > limit:
        raise bad_attribute(key, f"'{value}' exceeds maximum length of {limit}")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise bad_attribute(key, f"{value!r} contains control characters")
    return value


def uuid_attr(body: dict[str, Any], key: str) -> str:
    """A reference to another resource: 400 unless it looks like a UUID, as Neutron's
    ``type:uuid`` validator answers (a path id that is no UUID is simply not found)."""
    value = body.get(key)
    if not isinstance(value, str) or not UUID_LIKE.match(value):
        raise bad_attribute(key, f"'{value}' is not a valid UUID")
    return value


# oslo's bool_from_string(strict=True), which Neutron's convert_to_boolean uses.
_BOOLEANS = {
    **dict.fromkeys(("1", "t", "true", "on", "y", "yes"), True),
    **dict.fromkeys(("0", "f", "false", "off", "n", "no"), False),
}


def as_bool(value: Any) -> bool | None:
    """``value`` as Neutron's convert_to_boolean reads it; None if it is no boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _BOOLEANS:
        return _BOOLEANS[str(value).strip().lower()]
    return None


def flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = as_bool(body.get(key, default))
    if value is None:
        raise invalid_input(f"'{body.get(key)}' cannot be converted to boolean")
    return value
