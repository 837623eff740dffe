"""Resource tags (Neutron's standard-attr-tag): a set of strings on a taggable resource.

    PUT    /v2.0/networks/{id}/tags        {"tags": ["a", "b"]}  -> 200, replaces them all
    PUT    /v2.0/networks/{id}/tags/{tag}                        -> 201
    GET    /v2.0/networks/{id}/tags[/{tag}]                      -> 200 {"tags"} / 204 or 404
    DELETE /v2.0/networks/{id}/tags[/{tag}]                      -> 204 (404 for a missing tag)

The tags live on the resource's row (its ``tags`` column); a change takes the row's lock,
so two clients adding different tags at once both keep theirs. Who may read a resource
may read its tags; only its project (or an admin) changes them (Neutron's update policy).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import NotFound

from ..db.models import FloatingIp, Network, Port, Router, SecurityGroup, Subnet
from . import floatingips, networks, ports, routers, security_groups, subnets
from .common import owns, touch
from .errors import invalid_input, policy_denied

MAX_TAG_LEN = 255

Getter = Callable[[AsyncSession, RequestContext, str], Awaitable[Any]]


@dataclass(frozen=True)
class Kind:
    model: type[Any]
    singular: str  # Neutron's resource name, in policy rules and TagNotFound
    get: Getter


KINDS: dict[str, Kind] = {
    "networks": Kind(Network, "network", networks.get),
    "subnets": Kind(Subnet, "subnet", subnets.get),
    "ports": Kind(Port, "port", ports.get),
    "routers": Kind(Router, "router", routers.get),
    "security-groups": Kind(SecurityGroup, "security_group", security_groups.get),
    "floatingips": Kind(FloatingIp, "floatingip", floatingips.get),
}


def tag_not_found(kind: Kind, resource_id: str, tag: str) -> NotFound:
    return NotFound(
        f"Tag {tag} could not be found for {kind.singular} {resource_id}.",
        details={"type": "TagNotFound"},
    )


def valid_tag(tag: Any) -> str:
    """neutron's tagging.validate_tag: a string of at most 255 characters."""
    if not isinstance(tag, str):
        raise invalid_input(f"'{tag}' is not a valid string")
    if len(tag) > MAX_TAG_LEN:
        raise invalid_input(f"'{tag}' exceeds maximum length of {MAX_TAG_LEN}")
    return tag


def valid_tags(tags: Any) -> list[str]:
    """A list of unique strings (validate_list_of_unique_strings), as a replace-all PUT
    and a create body give them."""
    if not isinstance(tags, list):
        raise invalid_input(f"'{tags}' is not a list")
    checked = [valid_tag(t) for t in tags]
    if len(set(checked)) != len(checked):
        raise invalid_input(f"Duplicate items in the list: '{', '.join(checked)}'")
    return checked


def tags_body(body: Any) -> list[str]:
    """The body of ``PUT .../tags``: ``{"tags": [...]}``, else Neutron's Invalid tags body."""
    if not isinstance(body, dict) or "tags" not in body:
        raise invalid_input("Invalid tags body")
    return valid_tags(body["tags"])


def kind_of(collection: str) -> Kind:
    return KINDS[collection]


async def read(
    session: AsyncSession, ctx: RequestContext, collection: str, resource_id: str
) -> list[str]:
    row = await KINDS[collection].get(session, ctx, resource_id)
    return sorted(row.tags or [])


async def has(
    session: AsyncSession, ctx: RequestContext, collection: str, resource_id: str, tag: str
) -> None:
    """Nothing when the resource carries ``tag``; 404 TagNotFound when it does not."""
    kind = KINDS[collection]
    row = await kind.get(session, ctx, resource_id)
    if tag not in (row.tags or []):
        raise tag_not_found(kind, resource_id, tag)


async def _locked(session: AsyncSession, ctx: RequestContext, kind: Kind, resource_id: str) -> Any:
    """The row, visible (404) and the caller's (403), locked against other tag changes."""
    await session.execute(
        select(kind.model.id).where(kind.model.id == resource_id).with_for_update()
    )
    row = await kind.get(session, ctx, resource_id)
    await session.refresh(row, ["tags", "revision_number"])
    if not owns(ctx, row.project_id):
        raise policy_denied(f"update_{kind.singular}:tags")
    return row


def _store(row: Any, tags: list[str]) -> None:
    if sorted(tags) != sorted(row.tags or []):
        row.tags = sorted(tags)  # a new list: the JSON column sees the change
        touch(row)


async def replace(
    session: AsyncSession, ctx: RequestContext, collection: str, resource_id: str, tags: list[str]
) -> list[str]:
    row = await _locked(session, ctx, KINDS[collection], resource_id)
    _store(row, tags)
    await session.flush()
    return sorted(row.tags)


async def add(
    session: AsyncSession, ctx: RequestContext, collection: str, resource_id: str, tag: str
) -> None:
    row = await _locked(session, ctx, KINDS[collection], resource_id)
    _store(row, sorted({*(row.tags or []), valid_tag(tag)}))
    await session.flush()


async def remove(
    session: AsyncSession,
    ctx: RequestContext,
    collection: str,
    resource_id: str,
    tag: str | None = None,
) -> None:
    """One tag (404 TagNotFound if it is not there), or all of them."""
    kind = KINDS[collection]
    row = await _locked(session, ctx, kind, resource_id)
    current = list(row.tags or [])
    if tag is not None and tag not in current:
        raise tag_not_found(kind, resource_id, tag)
    _store(row, [t for t in current if t != tag] if tag is not None else [])
    await session.flush()


def on_create(row: Any, tags: list[str] | None) -> None:
    """Tags given in a create body (Neutron's tag-creation): set on the new row."""
    if tags:
        row.tags = sorted(tags)


def matches(tags: list[str], filters: dict[str, list[str]]) -> bool:
    """Neutron's tag filters, each a comma-separated list (repeated parameters join):
    ``tags`` all of them, ``tags-any`` one of them, ``not-tags`` not all of them,
    ``not-tags-any`` none of them."""
    have = set(tags)
    for key, values in filters.items():
        wanted = {t for v in values for t in v.split(",") if t}
        if not wanted:
            continue
        if key == "tags" and not wanted <= have:
            return False
        if key == "tags-any" and not wanted & have:
            return False
        if key == "not-tags" and wanted <= have:
            return False
        if key == "not-tags-any" and wanted & have:
            return False
    return True
