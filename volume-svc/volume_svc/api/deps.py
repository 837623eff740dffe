"""What a route needs: one transaction, the caller's context, the process' Deps, the URL base."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.chassis.links import public_base
from common_rpc.context import RequestContext, current_context

from ..domain import common
from ..domain.checks import field_error
from ..domain.errors import invalid, not_found
from ..settings import VolumeSettings
from ..wiring import Deps


@dataclass(frozen=True)
class Call:
    session: AsyncSession
    ctx: RequestContext
    deps: Deps
    # The service's public root (the gateway's URL and prefix): links in bodies start here.
    base: str

    @property
    def settings(self) -> VolumeSettings:
        return self.deps.settings


def deps_of(request: Request) -> Deps:
    return request.app.state.deps


def check_project(request: Request, project_id: str) -> RequestContext:
    """The project in the URL must be the token's (admins may name any)."""
    ctx = current_context()
    if project_id != ctx.project_id and not ctx.is_admin:
        raise not_found("Project", project_id)
    return ctx


@asynccontextmanager
async def transaction(request: Request, project_id: str) -> AsyncIterator[Call]:
    """Commit when the route returns; roll back on any error (it becomes the fault)."""
    ctx = check_project(request, project_id)
    deps = deps_of(request)
    async with common.transaction(deps.sessions) as session:
        yield Call(session, ctx, deps, public_base(request))


def envelope(body: Any, key: str) -> dict[str, Any]:
    """The resource inside ``{"volume": {...}}``; 400 in Cinder's schema words if not there."""
    if not isinstance(body, dict):
        raise invalid(f"{body!r} is not of type 'object'")
    if key not in body:
        raise invalid(f"{key!r} is a required property")
    if not isinstance(body[key], dict):
        raise field_error(key, body[key], f"{body[key]!r} is not of type 'object'")
    return body[key]


def action_of(body: Any) -> tuple[str, Any]:
    """The one action of an ``/action`` body (400 when the body is not one action).

    Whether the action exists is asked later (``known_action``), once the resource was
    found: an action on a missing volume is a 404 whatever the action.
    """
    if not isinstance(body, dict) or len(body) != 1:
        raise invalid("Malformed request body")
    ((action, args),) = body.items()
    return action, args


def known_action(action: str, known: Collection[str]) -> None:
    """Cinder's 400 for an action it does not have."""
    if action not in known:
        raise invalid(
            f"There is no such action: {action}. Verify the request body and Content-Type "
            "header and try again."
        )


def all_tenants(request: Request, ctx: RequestContext) -> bool:
    """``?all_tenants`` (or ``=1``/``=true``; openstacksdk sends ``all_projects``) widens an
    admin's listing to every project."""
    if not ctx.is_admin:
        return False
    params = request.query_params
    for name in ("all_tenants", "all_projects"):
        if name in params and params[name].lower() in ("", "1", "true", "yes"):
            return True
    return False
