"""Image v2 under ``/image/v2/images`` (no envelope around one image; Glance's faults)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import FileResponse

from common_rpc.context import current_context

from ..domain import image_members, images
from ..domain.errors import invalid, not_found
from ..domain.image_store import ImageStore
from . import image_schemas
from .common import transaction

router = APIRouter(prefix="/image/v2", tags=["images"])
# Attributes a list filters on by equality (``in:a,b`` for any of several); any other
# parameter not in LIST_CONTROLS filters on an extra property, as in Glance.
LIST_FILTERS = (
    "id", "name", "status", "owner", "disk_format", "container_format", "checksum",
    "os_hash_value", "size", "min_disk", "min_ram", "protected",
)  # fmt: skip
LIST_CONTROLS = {
    "limit", "marker", "sort", "sort_key", "sort_dir", "visibility", "member_status",
    "os_hidden", "tag", "size_min", "size_max",
}  # fmt: skip
SORT_KEYS = (
    "name", "status", "container_format", "disk_format", "size", "id", "created_at",
    "updated_at",
)  # fmt: skip


def _store(request: Request) -> ImageStore:
    return request.app.state.deps.images


def _text(value: Any) -> str:
    """A value as a query string spells it (``true``, ``12``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _matches(item: dict[str, Any], key: str, wanted: str) -> bool:
    if key not in item or item[key] is None:
        return False
    if wanted.startswith("in:"):
        return _text(item[key]) in wanted[3:].split(",")
    return _text(item[key]) == wanted


def _bound(params: Any, key: str) -> int | None:
    if key not in params:
        return None
    try:
        return int(params[key])
    except ValueError:
        raise invalid(f"Unable to filter on a range with a non-numeric value: {key}.") from None


def _sorting(params: Any) -> list[tuple[str, str]]:
    """Glance's two spellings: ``sort=size:desc,name`` or ``sort_key=size&sort_dir=desc``
    (repeated; one direction for all keys, or one per key). Default: newest first."""

    def key_of(key: str) -> str:
        if key not in SORT_KEYS:
            raise invalid(
                f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}."
            )
        return key

    def dir_of(direction: str) -> str:
        if direction not in ("asc", "desc"):
            raise invalid(f"Invalid sort direction: {direction}")
        return direction

    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise invalid("Old and new sorting syntax cannot be combined")
        pairs = []
        for part in params["sort"].strip().split(","):
            key, _, direction = part.partition(":")
            pairs.append((key_of(key.strip()), dir_of(direction.strip() or "desc")))
    else:
        keys = [key_of(k.strip()) for k in params.getlist("sort_key")]
        dirs = [dir_of(d.strip()) for d in params.getlist("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise invalid("Number of sort dirs does not match the number of sort keys")
        keys = keys or ["created_at"]
        dirs = dirs or ["desc"]
        pairs = [(k, dirs[i] if len(dirs) > 1 else dirs[0]) for i, k in enumerate(keys)]
    for tie in ("created_at", "id"):
        if tie not in [k for k, _ in pairs]:
            pairs.append((tie, "desc"))
    return pairs


def _sorted(items: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Stable sorts from the last key to the first; a missing value sorts lowest."""
    for key, direction in reversed(pairs):
        items = sorted(
            items,
            key=lambda i: (i.get(key) is not None, i.get(key) if i.get(key) is not None else 0),
            reverse=direction == "desc",
        )
    return items


def _filtered(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    params = request.query_params
    if "changes-since" in params:
        raise invalid('The "changes-since" filter is no longer available on v2.')
    for key in params:
        if key in LIST_CONTROLS:
            continue
        items = [i for i in items if _matches(i, key, params[key])]
    tags = [t.strip() for t in params.getlist("tag")]
    if tags:
        items = [i for i in items if all(t in i["tags"] for t in tags)]
    low, high = _bound(params, "size_min"), _bound(params, "size_max")
    if low is not None:
        items = [i for i in items if i["size"] is not None and i["size"] >= low]
    if high is not None:
        items = [i for i in items if i["size"] is not None and i["size"] <= high]
    return _sorted(items, _sorting(params))


def _hidden_param(params: Any) -> bool:
    value = params.get("os_hidden", "false").lower()
    if value not in ("true", "false"):
        raise invalid(
            f"Invalid value '{value}' for 'os_hidden' filter. Valid values are 'true' or 'false'."
        )
    return value == "true"


@router.get("/images")
async def list_images(request: Request) -> dict[str, Any]:
    """Glance's list: what the caller may list (visibility, member_status, os_hidden),
    then the attribute filters, the sort, and ``limit``/``marker`` paging."""
    params = request.query_params
    async with transaction(request, write=False) as call:
        rows = await images.list_all(
            call.session,
            call.ctx,
            visibility=params.get("visibility"),
            member_status=params.get("member_status", "accepted"),
            os_hidden=_hidden_param(params),
        )
        items = [images.view(r) for r in rows]
    items = _filtered(request, items)
    if params.get("marker"):
        ids = [i["id"] for i in items]
        if params["marker"] not in ids:
            raise invalid(f"Image {params['marker']} could not be found.")
        items = items[ids.index(params["marker"]) + 1 :]
    query = [(k, v) for k, v in params.multi_items() if k != "marker"]
    first = "/v2/images" + (f"?{urlencode(query)}" if query else "")
    out: dict[str, Any] = {"first": first, "schema": "/v2/schemas/images"}
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
                out["next"] = f"/v2/images?{urlencode([('marker', items[-1]['id']), *query])}"
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


@router.get(
    "/images/{image_id}/file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 204: {}},
)
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


@router.put("/images/{image_id}/tags/{tag}", status_code=204)
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    async with transaction(request) as call:
        await images.add_tag(call.session, call.ctx, image_id, tag)
    return Response(status_code=204)


@router.delete("/images/{image_id}/tags/{tag}", status_code=204)
async def remove_tag(request: Request, image_id: str, tag: str) -> Response:
    async with transaction(request) as call:
        await images.remove_tag(call.session, call.ctx, image_id, tag)
    return Response(status_code=204)


@router.get("/images/{image_id}/members")
async def list_members(request: Request, image_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        rows = await image_members.list_of(call.session, call.ctx, image_id)
        members = [image_members.view(r) for r in rows]
    return {"members": members, "schema": "/v2/schemas/members"}


@router.post("/images/{image_id}/members")
async def add_member(request: Request, image_id: str, body: Any = Body(None)) -> dict[str, Any]:
    """200 with the member, as Glance answers (not 201)."""
    async with transaction(request) as call:
        return image_members.view(await image_members.add(call.session, call.ctx, image_id, body))


@router.get("/images/{image_id}/members/{member_id}")
async def show_member(request: Request, image_id: str, member_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        row = await image_members.show(call.session, call.ctx, image_id, member_id)
        return image_members.view(row)


@router.put("/images/{image_id}/members/{member_id}")
async def update_member(
    request: Request, image_id: str, member_id: str, body: Any = Body(None)
) -> dict[str, Any]:
    async with transaction(request) as call:
        row = await image_members.answer(call.session, call.ctx, image_id, member_id, body)
        return image_members.view(row)


@router.delete("/images/{image_id}/members/{member_id}", status_code=204)
async def remove_member(request: Request, image_id: str, member_id: str) -> Response:
    async with transaction(request) as call:
        await image_members.remove(call.session, call.ctx, image_id, member_id)
    return Response(status_code=204)


@router.get("/schemas/{name}")
async def schema(name: str) -> dict[str, Any]:
    """``image``, ``images``, ``member``, ``members``: Glance's JSON schemas."""
    found = image_schemas.SCHEMAS.get(name)
    if found is None:
        raise not_found("Schema", name)
    return found()
