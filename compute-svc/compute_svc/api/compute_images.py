"""``/v2.1/images``: Nova's view of the images (older clients and Tempest): read, and
delete through the image API's own rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from common_rpc.context import current_context
from common_rpc.errors import NotFound

from ..db.models import Image
from ..domain import images
from ..domain.common import iso
from .common import links, page, transaction

router = APIRouter(prefix="/v2.1/images", tags=["images"])
STATUS = {"queued": "SAVING", "saving": "SAVING", "active": "ACTIVE", "deactivated": "ERROR"}


def _view(request: Request, image: Image) -> dict[str, Any]:
    return {
        "id": image.id,
        "name": image.name,
        "links": links(request, "images", image.id),
        "status": STATUS.get(image.status, "UNKNOWN"),
        "progress": 100 if image.status == "active" else 0,
        "minDisk": image.min_disk,
        "minRam": image.min_ram,
        "metadata": dict(image.properties or {}),
        "created": iso(image.created_at),
        "updated": iso(image.updated_at),
        "OS-EXT-IMG-SIZE:size": image.size,
    }


async def _listing(request: Request, detail: bool) -> dict[str, Any]:
    async with transaction(request) as call:
        rows = await images.list_all(call.session, call.ctx)
    items = [_view(request, r) for r in rows]
    if not detail:
        items = [{k: i[k] for k in ("id", "name", "links")} for i in items]
    return page(request, "images", items)


@router.get("")
async def list_images(request: Request) -> dict[str, Any]:
    return await _listing(request, detail=False)


@router.get("/detail")
async def list_images_detail(request: Request) -> dict[str, Any]:
    return await _listing(request, detail=True)


@router.get("/{image_id}")
async def show_image(request: Request, image_id: str) -> dict[str, Any]:
    async with transaction(request) as call:
        try:
            image = await images.get(call.session, call.ctx, image_id)
        except NotFound:
            raise NotFound("Image not found.") from None  # Nova's text, not Glance's
        return {"image": _view(request, image)}


@router.delete("/{image_id}", status_code=204, response_class=Response)
async def delete_image(request: Request, image_id: str) -> Response:
    """Nova's image proxy delete: the image API's delete (owner or admin), 204."""
    deps = request.app.state.deps
    try:
        await images.delete(deps.runtime.sessions, deps.images, current_context(), image_id)
    except NotFound:
        raise NotFound("Image not found.") from None
    return Response(status_code=204)
