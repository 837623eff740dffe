"""What a route needs: one transaction, the caller's context, the service settings."""

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
from ..settings import NetworkSettings
from ..wiring import Deps


@dataclass(frozen=True)
class Call:
    session: AsyncSession
    ctx: RequestContext
    settings: NetworkSettings


@asynccontextmanager
async def transaction(request: Request, *, write: bool = True) -> AsyncIterator[Call]:
    """Commit when the route returns; roll back on any error (it becomes the fault).
    ``write=False``: the route only reads (no write lock on SQLite)."""
    deps: Deps = request.app.state.deps
    async with common.transaction(deps.sessions, write=write) as session:
        yield Call(session, current_context(), request.app.state.settings)


def envelope(body: Any, key: str) -> dict[str, Any]:
    """The resource inside ``{"network": {...}}``; 400 with Neutron's texts otherwise."""
    if not body:
        raise invalid("Resource body required")
    if not isinstance(body, dict):
        raise invalid("Body contains invalid data")
    if body.get(key) is None:
        raise invalid(f"Unable to find '{key}' in request body")
    if not isinstance(body[key], dict):
        raise invalid(f"Object '{key}' contains invalid data")
    return body[key]
