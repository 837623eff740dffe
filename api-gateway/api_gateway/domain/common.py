"""Small helpers of identity's logic: rows by id or 404, the one domain, Keystone's 400s.

    project = await get_or_404(session, Project, project_id, "project")
    require_default_domain(body.domain_id)      # None or "default", else 404
    raise expecting("domain", "project")        # "Expecting to find domain in project. ..."

Messages follow Keystone's ("Could not find project: ID."), which clients show as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Invalid, NotFound

from ..db.models import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME

T = TypeVar("T")


# Keystone's ValidationError (400): "Expecting to find <attribute> in <target>. ..."
EXPECTING_TAIL = (
    " The server could not comply with the request since it is either malformed or "
    "otherwise incorrect. The client is assumed to be in error."
)


def expecting(attribute: str, target: str) -> Invalid:
    return Invalid(f"Expecting to find {attribute} in {target}.{EXPECTING_TAIL}")


async def get_or_404(session: AsyncSession, model: type[T], row_id: str, kind: str) -> T:
    row = await session.get(model, row_id)
    if row is None:
        raise NotFound(f"Could not find {kind}: {row_id}.")
    return row


def is_default_domain(domain_id: str | None = None, domain_name: str | None = None) -> bool:
    """True when a domain reference (by id or by name) means the only domain there is."""
    if domain_id is not None:
        return domain_id == DEFAULT_DOMAIN_ID
    if domain_name is not None:
        return domain_name.lower() == DEFAULT_DOMAIN_NAME.lower()
    return True


def require_default_domain(domain_id: str | None) -> str:
    """The domain id to store; an unknown domain is a 404, as in Keystone."""
    if domain_id is not None and domain_id != DEFAULT_DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return DEFAULT_DOMAIN_ID


def not_none(fields: Mapping[str, object], *names: str) -> None:
    """Reject an explicit null for attributes that cannot be unset."""
    for name in names:
        if name in fields and fields[name] is None:
            raise Invalid(
                f"Invalid input for field/attribute {name}. Value: None. "
                "None is not of type 'string'"
            )
