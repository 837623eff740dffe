"""Cinder list semantics on rendered resources: filters, sorting and marker paging.

GET /v3/p1/volumes/detail?status=available&sort=created_at:desc&limit=2
-> {"volumes": [...], "volumes_links": [{"rel": "next", "href": ".../detail?...&marker=ID"}]}

A page holds at most ``limit`` items (never more than Cinder's ``osapi_max_limit``); a
full page has a ``next`` link, as Cinder's has (so the last page of a list that divides
evenly is followed by an empty one). The link is on the gateway's public URL.
"""

from __future__ import annotations

import ast
from typing import Any

from fastapi import Request

from common_rpc.chassis.links import next_link

from ..domain.checks import invalid_input
from ..domain.errors import invalid, not_found

# Paging, presentation and scope parameters; the rest filter on attributes.
CONTROL = {
    "limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants", "all_projects", "offset",
    "with_count",
}  # fmt: skip
# Cinder's ``osapi_max_limit``: the largest page, and the page size when none is asked.
MAX_LIMIT = 1000


def _metadata_filter(text: str) -> dict[str, str]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise invalid(f"Invalid metadata filter {text!r}.") from None
    if not isinstance(value, dict):
        raise invalid(f"Invalid metadata filter {text!r}.")
    return {str(k): str(v) for k, v in value.items()}


def _filter(items: list[dict[str, Any]], key: str, wanted: str) -> list[dict[str, Any]]:
    if key == "metadata":
        pairs = _metadata_filter(wanted).items()
        return [i for i in items if all(i.get("metadata", {}).get(k) == v for k, v in pairs)]
    if key in ("name", "display_name"):
        return [i for i in items if i.get("name") == wanted]
    if items and key in items[0]:
        return [i for i in items if str(i.get(key)).lower() == wanted.lower()]
    return items  # unknown filters are ignored, as clients send some blindly


def _sort_keys(request: Request) -> list[tuple[str, bool]]:
    params = request.query_params
    if params.get("sort"):
        keys = []
        for part in params["sort"].split(","):
            key, _, direction = part.partition(":")
            keys.append((key.strip(), (direction or "desc").strip().lower() == "desc"))
        return keys
    if params.get("sort_key"):
        return [(params["sort_key"], params.get("sort_dir", "desc").lower() == "desc")]
    return []


def render_list(
    request: Request,
    collection: str,
    items: list[dict[str, Any]],
    shown: list[dict[str, Any]] | None = None,
    *,
    kind: str = "Item",
) -> dict[str, Any]:
    """Filter, sort and page ``items``; ``shown`` is the summary view of each (or items).

    Faults are Cinder's: a marker that is not in the list is the 404 of a missing ``kind``
    (Cinder looks it up), a bad limit or sort key 400.
    """
    by_id = {i["id"]: s for i, s in zip(items, shown or items, strict=True)}
    params = request.query_params
    for key in {k for k in params if k not in CONTROL}:
        items = _filter(items, key, params[key])
    for key, reverse in reversed(_sort_keys(request)):
        if items and key not in items[0]:
            raise invalid_input("Invalid sort key")
        items = sorted(items, key=lambda i, k=key: str(i.get(k) or ""), reverse=reverse)
    marker = params.get("marker")
    if marker:
        ids = [i["id"] for i in items]
        if marker not in ids:
            raise not_found(kind, marker)
        items = items[ids.index(marker) + 1 :]
    size = page_size(request)
    items = items[:size]
    out: dict[str, Any] = {collection: [by_id[i["id"]] for i in items]}
    if items and len(items) >= size:
        out[f"{collection}_links"] = [next_link(request, items[-1]["id"])]
    return out


def page_size(request: Request) -> int:
    """Cinder's ``_get_limit_param``: ``limit`` (at most ``MAX_LIMIT``), 400 if not a
    whole number of at least 0."""
    limit = request.query_params.get("limit")
    if limit is None:
        return MAX_LIMIT
    try:
        size = int(limit)
    except ValueError:
        raise invalid("limit param must be an integer") from None
    if size < 0:
        raise invalid("limit param must be positive")
    return min(size, MAX_LIMIT)
