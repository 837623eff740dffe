"""``/v2.0/{collection}/{id}/tags[/{tag}]``: Neutron's resource tags (standard-attr-tag).

openstack network set --tag red NET   # PUT .../tags {"tags": [..., "red"]}: replaces them
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from ..domain import tags
from .deps import transaction

router = APIRouter(prefix="/v2.0", tags=["tags"])


def _routes(collection: str) -> None:
    base = f"/{collection}/{{resource_id}}/tags"

    @router.get(base, name=f"{collection}_tags")
    async def list_tags(request: Request, resource_id: str) -> dict[str, Any]:
        async with transaction(request, write=False) as call:
            return {"tags": await tags.read(call.session, call.ctx, collection, resource_id)}

    @router.put(base, name=f"{collection}_tags_replace")
    async def replace_tags(
        request: Request, resource_id: str, body: Any = Body(None)
    ) -> dict[str, Any]:
        wanted = tags.tags_body(body)
        async with transaction(request) as call:
            kept = await tags.replace(call.session, call.ctx, collection, resource_id, wanted)
        return {"tags": kept}

    @router.delete(base, status_code=204, name=f"{collection}_tags_clear")
    async def clear_tags(request: Request, resource_id: str) -> Response:
        async with transaction(request) as call:
            await tags.remove(call.session, call.ctx, collection, resource_id)
        return Response(status_code=204)

    @router.get(f"{base}/{{tag}}", status_code=204, name=f"{collection}_tag")
    async def check_tag(request: Request, resource_id: str, tag: str) -> Response:
        async with transaction(request, write=False) as call:
            await tags.has(call.session, call.ctx, collection, resource_id, tag)
        return Response(status_code=204)

    @router.put(
        f"{base}/{{tag}}", status_code=201, name=f"{collection}_tag_add", response_class=Response
    )
    async def add_tag(request: Request, resource_id: str, tag: str) -> Response:
        async with transaction(request) as call:
            await tags.add(call.session, call.ctx, collection, resource_id, tag)
        return Response(status_code=201)

    @router.delete(f"{base}/{{tag}}", status_code=204, name=f"{collection}_tag_remove")
    async def remove_tag(request: Request, resource_id: str, tag: str) -> Response:
        async with transaction(request) as call:
            await tags.remove(call.session, call.ctx, collection, resource_id, tag)
        return Response(status_code=204)


for _collection in tags.KINDS:
    _routes(_collection)
