"""Volume transfers: ``/v3/{project_id}/os-volume-transfer`` and, the same under Cinder
3.55's name, ``/v3/{project_id}/volume-transfers`` (whose detail adds the 3.57 fields).

    POST .../os-volume-transfer {"transfer": {"volume_id": V, "name": "n"}}
    -> 202 {"transfer": {"id": T, "auth_key": "...", ...}}   (the key is shown only here)
    POST .../os-volume-transfer/T/accept {"accept": {"auth_key": "..."}}  (another project)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import transfers
from .deps import all_tenants, envelope, transaction
from .listing import render_list

LEGACY = "os-volume-transfer"
CURRENT = "volume-transfers"


def _router(collection: str) -> APIRouter:
    router = APIRouter(prefix=f"/v3/{{project_id}}/{collection}", tags=["transfers"])
    history = collection == CURRENT

    async def _list(request: Request, project_id: str, detail: bool) -> dict[str, Any]:
        async with transaction(request, project_id) as call:
            rows = await transfers.list_all(call.session, call.ctx, all_tenants(request, call.ctx))
            items = [transfers.view(t, call.base, collection, history=history) for t in rows]
            shown = None if detail else [
                transfers.view(t, call.base, collection, detail=False) for t in rows
            ]  # fmt: skip
        return render_list(request, "transfers", items, shown, kind="Transfer")

    @router.get("")
    async def list_transfers(request: Request, project_id: str) -> dict[str, Any]:
        return await _list(request, project_id, detail=False)

    @router.get("/detail")
    async def list_transfers_detail(request: Request, project_id: str) -> dict[str, Any]:
        return await _list(request, project_id, detail=True)

    @router.post("", status_code=202)
    async def create_transfer(
        request: Request, project_id: str, body: Any = Body(None)
    ) -> dict[str, Any]:
        async with transaction(request, project_id) as call:
            t, key = await transfers.create(call.session, call.ctx, envelope(body, "transfer"))
            out = transfers.view(t, call.base, collection)
        return {"transfer": out | {"auth_key": key}}

    @router.get("/{transfer_id}")
    async def show_transfer(request: Request, project_id: str, transfer_id: str) -> dict[str, Any]:
        async with transaction(request, project_id) as call:
            t = await transfers.get(call.session, call.ctx, transfer_id)
            return {"transfer": transfers.view(t, call.base, collection, history=history)}

    @router.delete("/{transfer_id}", status_code=202, response_class=Response)
    async def delete_transfer(request: Request, project_id: str, transfer_id: str) -> Response:
        async with transaction(request, project_id) as call:
            await transfers.delete(call.session, call.ctx, transfer_id)
        return Response(status_code=202)

    @router.post("/{transfer_id}/accept", status_code=202)
    async def accept_transfer(
        request: Request, project_id: str, transfer_id: str, body: Any = Body(None)
    ) -> dict[str, Any]:
        async with transaction(request, project_id) as call:
            t, _vol = await transfers.accept(
                call.session, call.ctx, call.settings, transfer_id, body
            )
            return {"transfer": transfers.view(t, call.base, collection, detail=False)}

    return router


legacy_router = _router(LEGACY)
router = _router(CURRENT)
