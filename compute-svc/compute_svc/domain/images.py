"""Images (Glance v2 shapes): records here, data in the ``ImageStore``.

Visibility, as Glance's: an owner sees all its images, everyone sees ``public`` and
``community`` ones, the projects a ``shared`` image was shared with see it
(``domain.image_members``; in lists only once they accepted), an admin sees all. Only an
admin makes an image public; an image made without a visibility is ``shared`` (Glance's
default, so its owner can add members at once). Lists leave out ``community`` images of
other projects unless asked for, and ``os_hidden`` ones unless asked for.
Status: queued -> saving -> active (upload), active <-> deactivated (its owner or an
admin, as Glance's default policy).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.context import RequestContext
from common_rpc.errors import QuotaExceeded

from ..db.image_members import ImageMember
from ..db.models import Image, utcnow
from .common import flag, integer, iso, new_id, text, transaction
from .errors import conflict, forbidden, invalid, not_found
from .image_store import ImageStore, Stored

DISK_FORMATS = ("qcow2", "raw", "aki", "ari", "ami")
CONTAINER_FORMATS = ("bare", "ami", "aki", "ari", "ovf")
VISIBILITIES = ("private", "public", "shared", "community")
DEFAULT_VISIBILITY = "shared"
MEMBER_STATUSES = ("pending", "accepted", "rejected")
TAG_LIMIT = 128  # Glance's image_tag_quota
# ``os_hidden`` has no column of its own: it is kept in ``properties`` under this key
# (never shown as an extra property; ``view`` lifts it out).
HIDDEN = "os_hidden"
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
    hidden = bool(out.pop(HIDDEN, False))
    out |= {
        "id": image.id,
        "name": image.name or None,
        "status": image.status,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "visibility": image.visibility,
        "protected": image.protected,
        "os_hidden": hidden,
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


def hidden(image: Image) -> bool:
    return bool((image.properties or {}).get(HIDDEN, False))


def visible(image: Image, ctx: RequestContext, membership: str | None = None) -> bool:
    """Whether the caller may read the image by its id; ``membership``: the caller's
    project's member status on it, if it has one (any status will do, as in Glance)."""
    if ctx.is_admin or image.owner == ctx.project_id:
        return True
    if image.visibility in ("public", "community"):
        return True
    return image.visibility == "shared" and membership is not None


def _owns(image: Image, ctx: RequestContext) -> bool:
    return ctx.is_admin or image.owner == ctx.project_id


async def membership(session: AsyncSession, project_id: str | None, image_id: str) -> str | None:
    """The member status of ``project_id`` on the image (None: not a member)."""
    if not project_id:
        return None
    row = await session.get(ImageMember, (image_id, project_id))
    return row.status if row is not None else None


async def memberships(session: AsyncSession, project_id: str | None) -> dict[str, str]:
    """Every image shared with ``project_id``: {image_id: member status}."""
    if not project_id:
        return {}
    rows = await session.scalars(select(ImageMember).where(ImageMember.member_id == project_id))
    return {r.image_id: r.status for r in rows}


async def get(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    image = await session.get(Image, image_id)
    if image is None:
        raise not_found("Image", image_id)
    member = None
    if image.visibility == "shared" and not _owns(image, ctx):
        member = await membership(session, ctx.project_id, image_id)
    if not visible(image, ctx, member):
        raise not_found("Image", image_id)
    return image


async def usable(session: AsyncSession, image: Image, project_id: str) -> bool:
    """Whether servers of ``project_id`` may boot from the image: what the project can
    read by the image's id (a member of a shared image may, whatever it answered)."""
    if image.owner == project_id or image.visibility in ("public", "community"):
        return True
    if image.visibility != "shared":
        return False
    return await membership(session, project_id, image.id) is not None


async def get_owned(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    """The image if the caller may change it; a public image of another project is 403."""
    image = await get(session, ctx, image_id)
    if not _owns(image, ctx):
        raise forbidden(f"You are not permitted to modify image {image_id}.")
    return image


def _listed(
    image: Image,
    ctx: RequestContext,
    member: str | None,
    visibility: str | None,
    member_status: str,
) -> bool:
    """Glance's list rule: the caller's own images, public and community ones, shared
    ones whose membership has ``member_status`` (``all``: any); an admin's, every image.
    Without a ``visibility`` filter, other projects' community images are left out."""
    mine = image.owner == ctx.project_id
    if visibility is None:
        if image.visibility == "community" and not mine:
            return False
    elif visibility != "all" and image.visibility != visibility:
        return False
    if ctx.is_admin or mine or image.visibility in ("public", "community"):
        return True
    if image.visibility != "shared" or member is None:
        return False
    return member_status == "all" or member == member_status


async def list_all(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    visibility: str | None = None,
    member_status: str = "accepted",
    os_hidden: bool = False,
) -> list[Image]:
    """What ``GET /v2/images`` lists before its attribute filters, newest first."""
    if visibility is not None and visibility not in (*VISIBILITIES, "all"):
        raise invalid(f"Invalid visibility value: {visibility}")
    if member_status not in (*MEMBER_STATUSES, "all"):
        raise invalid(f"Invalid status: {member_status}")
    member_of = await memberships(session, ctx.project_id)
    rows = await session.scalars(select(Image).order_by(Image.created_at.desc(), Image.id.desc()))
    return [
        r
        for r in rows
        if hidden(r) == os_hidden
        and _listed(r, ctx, member_of.get(r.id), visibility, member_status)
    ]


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise invalid(f"Invalid value {value!r} for {key}; expected one of {', '.join(allowed)}.")
    return str(value)


def _hidden(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"Invalid input for os_hidden: {value!r} is not a boolean.")
    return value


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
        visibility=_visibility(ctx, body, DEFAULT_VISIBILITY),
        protected=flag(body, "protected", False),
        min_disk=integer(body, "min_disk", default=0),
        min_ram=integer(body, "min_ram", default=0),
        tags=_tags(body.get("tags", [])),
        properties=_properties(body),
    )
    if _hidden(body.get("os_hidden", False)):
        image.properties = image.properties | {HIDDEN: True}
    session.add(image)
    await session.flush()
    return image


def _patch_op(change: Any) -> Any:
    """One change in RFC 6902's form: Glance's v2.0 patch media type (what Tempest and old
    clients send) writes ``{"replace": "/name", "value": v}`` instead of ``op``/``path``."""
    if isinstance(change, dict) and "op" not in change:
        named = [op for op in ("add", "replace", "remove") if op in change]
        if len(named) == 1:
            rest = {k: v for k, v in change.items() if k != named[0]}
            return rest | {"op": named[0], "path": change[named[0]]}
    return change


async def patch(session: AsyncSession, ctx: RequestContext, image_id: str, changes: Any) -> Image:
    """A JSON patch (``add``/``replace``/``remove``) on one top-level attribute each."""
    image = await get_owned(session, ctx, image_id)
    if not isinstance(changes, list):
        raise invalid("Expected a JSON patch: a list of operations.")
    attrs: dict[str, Any] = {}
    props = dict(image.properties or {})
    for change in map(_patch_op, changes):
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
    if "os_hidden" in attrs:
        props[HIDDEN] = _hidden(attrs["os_hidden"])
    if len(image.tags or []) > TAG_LIMIT:
        raise QuotaExceeded(f"Maximum number of tags exceeded: {TAG_LIMIT}.")
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
    """Deactivate or reactivate: the image's owner or an admin (Glance's default policy
    since Wallaby, ``role:admin or (role:member and project_id:%(project_id)s)``)."""
    image = await get(session, ctx, image_id)
    if not _owns(image, ctx):
        raise forbidden(f"You are not permitted to {'re' if on else 'de'}activate this image.")
    src, dst = ("deactivated", "active") if on else ("active", "deactivated")
    if image.status not in (src, dst):
        raise forbidden(f"Not allowed to {'re' if on else 'de'}activate image in {image.status}.")
    await _swap(session, image_id, src, dst)


async def swap(session: AsyncSession, image_id: str, src: str, dst: str) -> bool:
    """``src`` -> ``dst`` if the image is still ``src`` (a server snapshot's steps)."""
    return await _swap(session, image_id, src, dst)


async def discard(session: AsyncSession, image_id: str) -> None:
    """The record and its members gone, whoever's it is (a failed snapshot's image; the
    data is the caller's to delete)."""
    await session.execute(sql_delete(ImageMember).where(ImageMember.image_id == image_id))
    await session.execute(sql_delete(Image).where(Image.id == image_id))


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
    await session.execute(sql_delete(ImageMember).where(ImageMember.image_id == image_id))
    await session.delete(image)


async def add_tag(session: AsyncSession, ctx: RequestContext, image_id: str, tag: str) -> None:
    """``PUT /tags/{tag}``: idempotent; at most ``TAG_LIMIT`` tags (413 beyond, as Glance)."""
    image = await get_owned(session, ctx, image_id)
    if not tag or len(tag) > 255:
        raise invalid(f"Invalid tag {tag[:32]!r}: expected 1 to 255 characters.")
    tags = list(image.tags or [])
    if tag in tags:
        return
    if len(tags) >= TAG_LIMIT:
        raise QuotaExceeded(f"Image tag limit exceeded for image {image_id}: {TAG_LIMIT} allowed.")
    image.tags = [*tags, tag]
    image.updated_at = utcnow()
    await session.flush()


async def remove_tag(session: AsyncSession, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = await get_owned(session, ctx, image_id)
    tags = list(image.tags or [])
    if tag not in tags:
        raise not_found("Tag", tag)
    image.tags = [t for t in tags if t != tag]
    image.updated_at = utcnow()
    await session.flush()
