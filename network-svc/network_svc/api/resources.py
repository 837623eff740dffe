"""One CRUD router shape for every Neutron collection; the domain module does the work.

router = crud_router("networks", "network", networks, create=create_network)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import tags
from ..domain.errors import invalid
from ..wiring import Deps
from .deps import Call, envelope, transaction
from .listing import render_list, select_fields

Create = Callable[[Call, dict[str, Any]], Awaitable[Any]]
# An update that needs more of the call than its session and context (the settings).
Modify = Callable[[Call, str, dict[str, Any]], Awaitable[Any]]
# (deps, the created, updated or removed row, the transaction's session.info), once
# committed: where a change is pushed to the hosts.
AfterCommit = Callable[[Deps, Any, dict[str, Any]], Awaitable[None]]


def crud_router(
    collection: str,
    singular: str,
    domain: ModuleType,
    *,
    path: str | None = None,
    create: Create | None = None,
    view: Callable[..., dict[str, Any]] | None = None,
    get: str = "get",
    list_all: str = "list_all",
    update: str | None = "update",
    modify: Modify | None = None,
    remove: str = "remove",
    after_create: AfterCommit | None = None,
    after_update: AfterCommit | None = None,
    after_remove: AfterCommit | None = None,
    reads_write: bool = False,
    tagged: bool = False,
    view_settings: bool = False,
) -> APIRouter:
    """GET/POST ``/v2.0/{path}``, GET/PUT/DELETE ``/v2.0/{path}/{id}``.

    GETs run in read-only transactions unless ``reads_write`` (a list that may create,
    like a project's first look at its security groups making the default one).
    ``tagged``: the resource has tags, which a create body may give.
    ``view_settings``: the view takes the settings too (what only they say, the zones).
    """
    path = path or collection
    router = APIRouter(prefix=f"/v2.0/{path}", tags=[collection])
    render = view or domain.view

    def show(row: Any, call: Call) -> dict[str, Any]:
        return render(row, call.ctx, call.settings) if view_settings else render(row, call.ctx)

    build = create or (lambda call, body: domain.create(call.session, call.ctx, body))

    async def make(call: Call, body: dict[str, Any]) -> Any:
        # Tags given at create (``tagged`` collections) are set on the new row.
        given = tags.valid_tags(body.pop("tags")) if tagged and "tags" in body else None
        row = await build(call, body)
        tags.on_create(row, given)
        return row

    @router.get("")
    async def list_resources(request: Request) -> dict[str, Any]:
        async with transaction(request, write=reads_write) as call:
            rows = await getattr(domain, list_all)(call.session, call.ctx)
            items = [show(row, call) for row in rows]
        return render_list(request, collection, items)

    @router.post("", status_code=201)
    async def create_resource(request: Request, body: Any = Body(None)) -> dict[str, Any]:
        async with transaction(request) as call:
            if isinstance(body, dict) and isinstance(body.get(collection), list):
                # Bulk create: all or nothing, in one transaction.
                if not body[collection]:
                    raise invalid("Resources required")
                rows = [
                    await make(call, envelope({singular: item}, singular))
                    for item in body[collection]
                ]
                out: dict[str, Any] = {collection: [show(row, call) for row in rows]}
            else:
                rows = [await make(call, envelope(body, singular))]
                out = {singular: show(rows[0], call)}
            info = dict(call.session.info)
        if after_create is not None:
            for row in rows:
                await after_create(request.app.state.deps, row, info)
        return out

    @router.get("/{resource_id}")
    async def show_resource(request: Request, resource_id: str) -> dict[str, Any]:
        async with transaction(request, write=reads_write) as call:
            row = await getattr(domain, get)(call.session, call.ctx, resource_id)
            item = show(row, call)
        return {singular: select_fields(item, request.query_params.getlist("fields"))}

    if update is not None:
        name = update
        change = modify or (
            lambda call, rid, body: getattr(domain, name)(call.session, call.ctx, rid, body)
        )

        @router.put("/{resource_id}")
        async def update_resource(
            request: Request, resource_id: str, body: Any = Body(None)
        ) -> dict[str, Any]:
            async with transaction(request) as call:
                row = await change(call, resource_id, envelope(body, singular))
                out = {singular: show(row, call)}
                info = dict(call.session.info)
            if after_update is not None:
                await after_update(request.app.state.deps, row, info)
            return out

    @router.delete("/{resource_id}", status_code=204)
    async def delete_resource(request: Request, resource_id: str) -> Response:
        async with transaction(request) as call:
            gone = await getattr(domain, remove)(call.session, call.ctx, resource_id)
            info = dict(call.session.info)
        if after_remove is not None:
            await after_remove(request.app.state.deps, gone, info)  # committed: tell hosts
        return Response(status_code=204)

    return router
