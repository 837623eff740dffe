"""``/v2.0/routers`` and its interface actions; each change is pushed to the router's agent.

PUT /v2.0/routers/{id}/add_router_interface {"subnet_id": ...} -> 200 {"id", "port_id", ...}

The desired state goes out after the transaction committed, as a cast with the router's
generation: a lost or late command is repaired by the agent's reconcile.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import changes, push, routers, tags
from ..domain.errors import invalid
from .deps import envelope, transaction
from .listing import render_list, select_fields

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v2.0/routers", tags=["routers"])


async def push_routers(
    request: Request, changed: dict[str, tuple[str, int]], networks: set[str]
) -> None:
    """The changed routers to their hosts, then the networks whose ports the change added
    or removed to every host serving them (dnsmasq's hosts)."""
    await push.routers_changed(request.app.state.deps, changed)
    await push.networks_changed(request.app.state.deps, networks)


@router.get("")
async def list_routers(request: Request) -> dict[str, Any]:
    async with transaction(request) as call:
        items = [
            routers.view(r, call.ctx, call.settings)
            for r in await routers.list_all(call.session, call.ctx)
        ]
    return render_list(request, "routers", items)


@router.post("", status_code=201)
async def create_router(request: Request, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        attrs = envelope(body, "router")
        given = tags.valid_tags(attrs.pop("tags")) if "tags" in attrs else None
        row = await routers.create(call.session, call.ctx, call.settings, attrs)
        tags.on_create(row, given)
        out = {"router": routers.view(row, call.ctx, call.settings)}
    await push_routers(request, changed, networks)
    return out


@router.get("/{router_id}")
async def show_router(request: Request, router_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        item = routers.view(
            await routers.get(call.session, call.ctx, router_id), call.ctx, call.settings
        )
    return {"router": select_fields(item, request.query_params.getlist("fields"))}


@router.put("/{router_id}")
async def update_router(request: Request, router_id: str, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        row = await routers.update(call.session, call.ctx, router_id, envelope(body, "router"))
        out = {"router": routers.view(row, call.ctx, call.settings)}
    await push_routers(request, changed, networks)
    return out


@router.delete("/{router_id}", status_code=204)
async def delete_router(request: Request, router_id: str) -> Response:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        await routers.remove(call.session, call.ctx, router_id)
    await push_routers(request, changed, networks)
    return Response(status_code=204)


def _action_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("Bad router request: expected an object with subnet_id or port_id.")
    return body


@router.put("/{router_id}/add_router_interface")
async def add_router_interface(
    request: Request, router_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        out = await routers.add_interface(call.session, call.ctx, router_id, _action_body(body))
    await push_routers(request, changed, networks)
    return out


@router.put("/{router_id}/remove_router_interface")
async def remove_router_interface(
    request: Request, router_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        networks = changes.networks(call.session)
        out = await routers.remove_interface(call.session, call.ctx, router_id, _action_body(body))
    await push_routers(request, changed, networks)
    return out


async def _change_routes(request: Request, router_id: str, body: Any, *, add: bool) -> Any:
    async with transaction(request) as call:
        changed = changes.routers(call.session)
        row = await routers.change_routes(call.session, call.ctx, router_id, body, add=add)
        out = {"router": routers.view(row, call.ctx, call.settings)}
    await push.routers_changed(request.app.state.deps, changed)
    return out


@router.put("/{router_id}/add_extraroutes")
async def add_extraroutes(
    request: Request, router_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    """extraroute-atomic: ``{"router": {"routes": [...]}}`` joins the router's routes."""
    return await _change_routes(request, router_id, body, add=True)


@router.put("/{router_id}/remove_extraroutes")
async def remove_extraroutes(
    request: Request, router_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    """extraroute-atomic: the given routes leave the router's routes (absent ones: ignored)."""
    return await _change_routes(request, router_id, body, add=False)
