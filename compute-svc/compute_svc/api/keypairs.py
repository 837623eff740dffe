"""``/v2.1/os-keypairs``: the caller's own keypairs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import keypairs, quotas
from ..domain.common import envelope
from .common import transaction

router = APIRouter(prefix="/v2.1/os-keypairs", tags=["keypairs"])


@router.get("")
async def list_keypairs(request: Request) -> dict[str, Any]:
    async with transaction(request) as call:
        rows = await keypairs.list_all(call.session, call.ctx)
        return {"keypairs": [{"keypair": keypairs.view(r)} for r in rows]}


@router.post("")
async def create_keypair(request: Request, body: Any = Body(None)) -> dict[str, Any]:
    async with transaction(request) as call:
        pair, private = await keypairs.create(
            call.session,
            call.ctx,
            envelope(body, "keypair"),
            quota_defaults=quotas.defaults(call.settings),
        )
        out = keypairs.view(pair) | {"user_id": pair.user_id}
    if private is not None:
        out["private_key"] = private
    return {"keypair": out}


@router.get("/{name}")
async def show_keypair(request: Request, name: str) -> dict[str, Any]:
    async with transaction(request) as call:
        pair = await keypairs.get(call.session, call.ctx, name)
        return {"keypair": keypairs.view(pair, detail=True)}


@router.delete("/{name}", status_code=202, response_class=Response)
async def delete_keypair(request: Request, name: str) -> Response:
    async with transaction(request) as call:
        await keypairs.remove(call.session, call.ctx, name)
    return Response(status_code=202)
