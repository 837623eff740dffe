"""Images (Glance v2 shapes): records here, data in the ``ImageStore``.

Visibility: an owner sees its private images, everyone sees public ones, an admin sees
all; only an admin makes an image public. Status: queued -> saving -> active (upload),
active <-> deactivated (admin).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.context import RequestContext

from ..db.models import Image, utcnow
from .common import flag, integer, iso, new_id, text, transaction
from .errors import conflict, forbidden, invalid, not_found
from .image_store import ImageStore, Stored

DISK_FORMATS = ("qcow2", "raw", "aki", "ari", "ami")
CONTAINER_FORMATS = ("bare", "ami", "aki", "ari", "ovf")
VISIBILITIES = ("private", "public")
# Attributes with a column; anything else given is an extra property (a string).
CORE = {
    "id", "name", "status", "disk_format", "container_format", "visibility", "protected",
    "os_hidden", "owner", "size", "virtual_size", "min_disk", "min_ram", "checksum",
    "os_hash_algo", "os_hash_value", "tags", "created_at", "updated_at", "self", "file",
    "schema", "direct_url", "locations",
}  # fmt: skip
READ_ONLY = CORE - {"name", "disk_format", "container_format", "visibility", "protected",
                    "min_disk", "min_ram", "tags", "os_hidden"}  # fmt: skip
PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


def view(image: Image) -> dict[str, Any]:
    out: dict[str, Any] = dict(image.properties or {})
    out |= {
        "id": image.id,
        "name": image.name or None,
        "status": image.status,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "visibility": image.visibility,
        "protected": image.protected,
        "os_hidden": False,
        "owner": image.owner,
        "size": image.size,
        "virtual_size": None,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "checksum": image.checksum,
        "os_hash_algo": "sha512" if image.os_hash_value else None,
        "os_hash_value": image.os_hash_value,
        "tags": list(image.tags or []),
        "created_at": iso(image.created_at),
        "updated_at": iso(image.updated_at),
        "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    }
    return out


def visible(image: Image, ctx: RequestContext) -> bool:
    return ctx.is_admin or image.visibility == "public" or image.owner == ctx.project_id


def _owns(image: Image, ctx: RequestContext) -> bool:
    return ctx.is_admin or image.owner == ctx.project_id


async def get(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    image = await session.get(Image, image_id)
    if image is None or not visible(image, ctx):
        raise not_found("Image", image_id)
    return image


async def get_owned(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    """The image if the caller may change it; a public image of another project is 403."""
    image = await get(session, ctx, image_id)
    if not _owns(image, ctx):
        raise forbidden(f"You are not permitted to modify image {image_id}.")
    return image


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[Image]:
    rows = await session.scalars(select(Image).order_by(Image.created_at.desc(), Image.id))
    return [r for r in rows if visible(r, ctx)]


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise invalid(f"Invalid value {value!r} for {key}; expected one of {', '.join(allowed)}.")
    return str(value)


def _visibility(ctx: RequestContext, body: dict[str, Any], default: str) -> str:
    value = _choice(body, "visibility", VISIBILITIES) or default
    if value == "public" and not ctx.is_admin:
        raise forbidden("Only an admin may publicize an image.")
    return value


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) and len(t) <= 255 for t in value):
        raise invalid("Invalid input for tags: expected a list of strings.")
    return list(dict.fromkeys(value))


def _properties(body: dict[str, Any]) -> dict[str, str]:
    props: dict[str, str] = {}
    for key, value in body.items():
        if key in CORE:
            continue
        if not PROPERTY_KEY.match(key) or not isinstance(value, str) or len(value) > 65535:
            raise invalid(f"Invalid extra property {key!r}: expected a string value.")
        props[key] = value
    for key in ("kernel_id", "ramdisk_id"):
        if key in props:
            _uuid(props[key], key)
    return props


def _uuid(value: str, key: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid(f"Invalid input for {key}: {value!r} is not a UUID.") from None


async def create(session: AsyncSession, ctx: RequestContext, body: dict[str, Any]) -> Image:
    if not ctx.project_id:
        raise invalid("A project-scoped token is required.")
    bad = sorted(k for k in body if k in READ_ONLY and k != "id")
    if bad:
        raise forbidden(f"Attribute '{bad[0]}' is read-only.")
    image_id = _uuid(str(body["id"]), "id") if body.get("id") else new_id()
    if await session.get(Image, image_id) is not None:
        raise conflict(f"Image with identifier {image_id} already exists.")
    image = Image(
        id=image_id,
        owner=ctx.project_id,
        name=text(body, "name"),
        status="queued",
        disk_format=_choice(body, "disk_format", DISK_FORMATS),
        container_format=_choice(body, "container_format", CONTAINER_FORMATS),
        visibility=_visibility(ctx, body, "private"),
        protected=flag(body, "protected", False),
        min_disk=integer(body, "min_disk", default=0),
        min_ram=integer(body, "min_ram", default=0),
        tags=_tags(body.get("tags", [])),
        properties=_properties(body),
    )
    session.add(image)
    await session.flush()
    return image


async def patch(session: AsyncSession, ctx: RequestContext, image_id: str, changes: Any) -> Image:
    """A JSON patch (``add``/``replace``/``remove``) on one top-level attribute each."""
    image = await get_owned(session, ctx, image_id)
    if not isinstance(changes, list):
        raise invalid("Expected a JSON patch: a list of operations.")
    attrs: dict[str, Any] = {}
    props = dict(image.properties or {})
    for change in changes:
        if not isinstance(change, dict) or change.get("op") not in ("add", "replace", "remove"):
            raise invalid("Each change needs an op of add, replace or remove.")
        path = change.get("path")
        if not isinstance(path, str) or not path.startswith("/") or "/" in path[1:]:
            raise invalid(f"Invalid path {path!r}.")
        key = path[1:]
        if key in READ_ONLY:
            raise forbidden(f"Attribute '{key}' is read-only.")
        if key in CORE:
            if change["op"] == "remove":
                raise forbidden(f"Attribute '{key}' may not be removed.")
            attrs[key] = change.get("value")
        elif change["op"] == "remove":
            if key not in props:
                raise conflict(f"Property {key} does not exist.")
            props.pop(key)
        else:
            props |= _properties({key: change.get("value")})
    if "name" in attrs:
        image.name = text(attrs, "name")
    for key in ("disk_format", "container_format"):
        if key in attrs:
            if image.status != "queued":
                raise forbidden(f"Attribute '{key}' can be only replaced for a queued image.")
            allowed = DISK_FORMATS if key == "disk_format" else CONTAINER_FORMATS
            setattr(image, key, _choice(attrs, key, allowed))
    if "visibility" in attrs:
        image.visibility = _visibility(ctx, attrs, image.visibility)
    if "protected" in attrs:
        image.protected = flag(attrs, "protected", image.protected)
    for key in ("min_disk", "min_ram"):
        if key in attrs:
            setattr(image, key, integer(attrs, key))
    if "tags" in attrs:
        image.tags = _tags(attrs["tags"])
    image.properties = props
    image.updated_at = utcnow()
    await session.flush()
    return image


async def upload(
    sessions: async_sessionmaker[AsyncSession],
    store: ImageStore,
    ctx: RequestContext,
    image_id: str,
    chunks: AsyncIterator[bytes],
    *,
    cap: int,
) -> None:
    """``PUT /file``: the data streamed into the store; the image is active only once all
    of it is there. A failed upload keeps no data and makes the image ``queued`` again;
    an image deleted while its data came in keeps none either (404)."""
    async with transaction(sessions) as session:
        await begin_upload(session, ctx, image_id)
    try:
        stored = await store.write(image_id, chunks, cap=cap)
        async with transaction(sessions) as session:
            done = await finish_upload(session, image_id, stored)
    except BaseException:
        store.delete(image_id)
        async with transaction(sessions) as session:
            await abort_upload(session, image_id)
        raise
    if not done:
        store.delete(image_id)
        raise not_found("Image", image_id)


async def delete(
    sessions: async_sessionmaker[AsyncSession],
    store: ImageStore,
    ctx: RequestContext,
    image_id: str,
) -> None:
    """The record, then its data."""
    async with transaction(sessions) as session:
        await remove(session, ctx, image_id)
    store.delete(image_id)


async def begin_upload(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    """queued -> saving: exactly one upload wins the image."""
    image = await get_owned(session, ctx, image_id)
    if not image.disk_format or not image.container_format:
        raise invalid("Properties disk_format and container_format must be set prior to upload.")
    moved = await _swap(session, image_id, "queued", "saving")
    if not moved:
        raise conflict(f"Image status transition from {image.status} to saving is not allowed")
    return image


async def finish_upload(session: AsyncSession, image_id: str, stored: Stored) -> bool:
    """saving -> active with the data's size and hashes; False if the image went away."""
    return await _swap(
        session,
        image_id,
        "saving",
        "active",
        size=stored.size,
        checksum=stored.md5,
        os_hash_value=stored.sha512,
    )


async def abort_upload(session: AsyncSession, image_id: str) -> None:
    await _swap(session, image_id, "saving", "queued")


async def set_active(session: AsyncSession, ctx: RequestContext, image_id: str, on: bool) -> None:
    if not ctx.is_admin:
        raise forbidden()
    image = await get(session, ctx, image_id)
    src, dst = ("deactivated", "active") if on else ("active", "deactivated")
    if image.status not in (src, dst):
        raise forbidden(f"Not allowed to {'re' if on else 'de'}activate image in {image.status}.")
    await _swap(session, image_id, src, dst)


async def _swap(session: AsyncSession, image_id: str, src: str, dst: str, **values: Any) -> bool:
    result = await session.execute(
        update(Image)
        .where(Image.id == image_id, Image.status == src)
        .values(status=dst, updated_at=utcnow(), **values)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def remove(session: AsyncSession, ctx: RequestContext, image_id: str) -> None:
    image = await get_owned(session, ctx, image_id)
    if image.protected:
        raise forbidden(f"Image {image_id} is protected and cannot be deleted.")
    await session.delete(image)
