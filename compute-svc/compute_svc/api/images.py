"""Image v2 under ``/image/v2/images`` (no envelope around one image; Glance's faults)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import FileResponse

from common_rpc.context import current_context

from ..domain import images
from ..domain.errors import invalid, not_found
from ..domain.image_store import ImageStore
from .common import transaction

router = APIRouter(prefix="/image/v2", tags=["images"])
LIST_FILTERS = ("name", "status", "visibility", "owner", "disk_format", "container_format")


def _store(request: Request) -> ImageStore:
    return request.app.state.deps.images


def _filtered(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    params = request.query_params
    for key in LIST_FILTERS:
        if key in params:
            items = [i for i in items if str(i.get(key)) == params[key]]
    if "id" in params:
        wanted = params["id"].removeprefix("in:").split(",")
        items = [i for i in items if i["id"] in wanted]
    if "tag" in params:
        items = [i for i in items if all(t in i["tags"] for t in params.getlist("tag"))]
    sort_key = params.get("sort_key")
    if sort_key:
        if items and sort_key not in items[0]:
            raise invalid(f"Invalid sort key: {sort_key}.")
        reverse = params.get("sort_dir", "desc") == "desc"
        items = sorted(items, key=lambda i: (str(i.get(sort_key) or ""), i["id"]), reverse=reverse)
    return items


@router.get("/images")
async def list_images(request: Request) -> dict[str, Any]:
    async with transaction(request) as call:
        items = [images.view(r) for r in await images.list_all(call.session, call.ctx)]
    items = _filtered(request, items)
    params = request.query_params
    if params.get("marker"):
        ids = [i["id"] for i in items]
        if params["marker"] not in ids:
            raise not_found("Image", params["marker"])
        items = items[ids.index(params["marker"]) + 1 :]
    out: dict[str, Any] = {"first": "/v2/images", "schema": "/v2/schemas/images"}
    if params.get("limit"):
        try:
            size = int(params["limit"])
        except ValueError:
            raise invalid("limit param must be an integer") from None
        if size < 0:
            raise invalid("limit param must be positive")
        if len(items) > size:
            items = items[:size]
            if items:
                out["next"] = f"/v2/images?marker={items[-1]['id']}&limit={size}"
    return {"images": items, **out}


@router.post("/images", status_code=201)
async def create_image(request: Request, body: Any = Body(None)) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("Expected a JSON object describing the image.")
    async with transaction(request) as call:
        return images.view(await images.create(call.session, call.ctx, body))


@router.get("/images/{image_id}")
async def show_image(request: Request, image_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        return images.view(await images.get(call.session, call.ctx, image_id))


@router.patch("/images/{image_id}")
async def update_image(request: Request, image_id: str) -> dict[str, Any]:
    """The body is a JSON patch whatever the media type says (Glance's own is not JSON's)."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise invalid("The request body is not valid JSON.") from None
    async with transaction(request) as call:
        return images.view(await images.patch(call.session, call.ctx, image_id, body))


@router.delete("/images/{image_id}", status_code=204)
async def delete_image(request: Request, image_id: str) -> Response:
    deps = request.app.state.deps
    await images.delete(deps.runtime.sessions, _store(request), current_context(), image_id)
    return Response(status_code=204)


@router.put("/images/{image_id}/file", status_code=204)
async def upload_image(request: Request, image_id: str) -> Response:
    """Stream the body into the store (``domain.images.upload``)."""
    deps = request.app.state.deps
    await images.upload(
        deps.runtime.sessions,
        _store(request),
        current_context(),
        image_id,
        request.stream(),
        cap=deps.settings.image_size_cap,
    )
    return Response(status_code=204)


@router.get("/images/{image_id}/file", response_model=None)
async def download_image(request: Request, image_id: str) -> Response:
    async with transaction(request) as call:
        image = await images.get(call.session, call.ctx, image_id)
        checksum = image.checksum
    store = _store(request)
    if not store.has(image_id) or checksum is None:
        return Response(status_code=204)
    return FileResponse(
        store.path(image_id),
        media_type="application/octet-stream",
        headers={"Content-MD5": checksum},
    )


@router.post("/images/{image_id}/actions/deactivate", status_code=204)
async def deactivate(request: Request, image_id: str) -> Response:
    async with transaction(request) as call:
        await images.set_active(call.session, call.ctx, image_id, False)
    return Response(status_code=204)


@router.post("/images/{image_id}/actions/reactivate", status_code=204)
async def reactivate(request: Request, image_id: str) -> Response:
    async with transaction(request) as call:
        await images.set_active(call.session, call.ctx, image_id, True)
    return Response(status_code=204)
