"""What a route needs: one transaction, the caller's context, links and Nova paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, current_context

from ..domain import common
from ..domain.errors import invalid
from ..settings import ComputeSettings
from ..wiring import Deps


@dataclass(frozen=True)
class Call:
    session: AsyncSession
    ctx: RequestContext
    settings: ComputeSettings
    deps: Deps


@asynccontextmanager
async def transaction(request: Request, *, write: bool = True) -> AsyncIterator[Call]:
    """Commit when the route returns; roll back on any error (it becomes the fault).
    ``write=False``: the route only reads (on SQLite: a snapshot, no write lock)."""
    deps: Deps = request.app.state.deps
    async with common.transaction(deps.runtime.sessions, write=write) as session:
        yield Call(session, current_context(), request.app.state.settings, deps)


def base_url(request: Request) -> str:
    """The public root the client used (the gateway's, from X-Forwarded-*)."""
    headers = request.headers
    host = headers.get("x-forwarded-host")
    if host:
        proto = headers.get("x-forwarded-proto", "http")
        prefix = headers.get("x-forwarded-prefix", "").rstrip("/")
        return f"{proto}://{host}{prefix}"
    return str(request.base_url).rstrip("/")


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    root = base_url(request)
    return [
        {"rel": "self", "href": f"{root}/v2.1/{collection}/{item_id}"},
        {"rel": "bookmark", "href": f"{root}/{collection}/{item_id}"},
    ]


def page(request: Request, collection: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Nova's ``limit``/``marker`` paging; ``<collection>_links`` only when more follow."""
    params = request.query_params
    marker = params.get("marker")
    if marker:
        ids = [i["id"] for i in items]
        if marker not in ids:
            raise invalid(f"marker [{marker}] not found")
        items = items[ids.index(marker) + 1 :]
    out: dict[str, Any] = {}
    limit = params.get("limit")
    if limit is not None:
        try:
            size = int(limit)
        except ValueError:
            raise invalid(f"Invalid limit {limit!r}.") from None
        if size < 0:
            raise invalid(f"Invalid limit {limit!r}.")
        if len(items) > size:
            items = items[:size]
            if items:
                url = request.url.remove_query_params("marker")
                href = str(url.include_query_params(marker=items[-1]["id"]))
                out[f"{collection}_links"] = [{"rel": "next", "href": href}]
    return {collection: items, **out}
