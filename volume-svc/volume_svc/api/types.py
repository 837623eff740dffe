"""``/v3/{project_id}/types``: the default type for everyone; admins add, update and remove
types and their ``extra_specs`` (Cinder's types-manage and types-extra-specs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import checks, types
from ..domain.errors import invalid
from .deps import envelope, transaction

router = APIRouter(prefix="/v3/{project_id}/types", tags=["types"])


@router.get("")
async def list_types(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        await types.ensure_default(call.session, call.settings)
        rows = await types.list_all(call.session, call.ctx)
        return {"volume_types": [types.view(t, call.ctx) for t in rows]}


@router.get("/default")
async def default_type(request: Request, project_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vt = await types.ensure_default(call.session, call.settings)
        return {"volume_type": types.view(vt, call.ctx)}


@router.post("")
async def create_type(request: Request, project_id: str, body: Any = Body(None)) -> Any:
    async with transaction(request, project_id) as call:
        vt = await types.create(call.session, call.ctx, envelope(body, "volume_type"))
        return {"volume_type": types.view(vt, call.ctx)}


@router.get("/{type_id}")
async def show_type(request: Request, project_id: str, type_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        await types.ensure_default(call.session, call.settings)
        vt = await types.get(call.session, call.ctx, type_id)
        return {"volume_type": types.view(vt, call.ctx)}


@router.delete("/{type_id}", status_code=202, response_class=Response)
async def delete_type(request: Request, project_id: str, type_id: str) -> Response:
    async with transaction(request, project_id) as call:
        await types.remove(call.session, call.ctx, call.settings, type_id)
    return Response(status_code=202)


@router.put("/{type_id}")
async def update_type(
    request: Request, project_id: str, type_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        vt = await types.update(
            call.session, call.ctx, call.settings, type_id, envelope(body, "volume_type")
        )
        return {"volume_type": types.view(vt, call.ctx)}


@router.get("/{type_id}/extra_specs")
async def list_extra_specs(request: Request, project_id: str, type_id: str) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        return {"extra_specs": await types.extra_specs(call.session, call.ctx, type_id)}


@router.post("/{type_id}/extra_specs")
async def create_extra_specs(
    request: Request, project_id: str, type_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    """Add or change keys; Cinder answers the body it was given."""
    checks.root(body, "extra_specs")
    extra = [k for k in body if k != "extra_specs"]
    if extra:
        raise checks.additional("body", body, extra)
    specs = checks.string_map(
        body["extra_specs"], "extra_specs", key=checks.SPEC_KEY, nullable=True
    )
    async with transaction(request, project_id) as call:
        await types.set_extra_specs(call.session, call.ctx, type_id, specs)
    return {"extra_specs": specs}


@router.get("/{type_id}/extra_specs/{key}")
async def show_extra_spec(
    request: Request, project_id: str, type_id: str, key: str
) -> dict[str, Any]:
    async with transaction(request, project_id) as call:
        return await types.extra_spec(call.session, call.ctx, type_id, key)


@router.put("/{type_id}/extra_specs/{key}")
async def update_extra_spec(
    request: Request, project_id: str, type_id: str, key: str, body: Any = Body(None)
) -> dict[str, Any]:
    """The body is the one spec, ``{key: value}``."""
    spec = checks.string_map(body, "body", key=checks.SPEC_KEY, nullable=True, exactly_one=True)
    if key not in spec:
        raise invalid("Request body and URI mismatch")
    async with transaction(request, project_id) as call:
        await types.set_extra_specs(call.session, call.ctx, type_id, spec)
    return spec


@router.delete("/{type_id}/extra_specs/{key}", status_code=202, response_class=Response)
async def delete_extra_spec(request: Request, project_id: str, type_id: str, key: str) -> Response:
    async with transaction(request, project_id) as call:
        await types.delete_extra_spec(call.session, call.ctx, type_id, key)
    return Response(status_code=202)
