"""Image members, as Glance's: an owner shares a ``shared`` image with other projects.

A member starts ``pending``; the member project (never the owner) accepts or rejects it.
The image's owner (or an admin) adds and removes members and lists them all; a member
sees only its own membership. A member project may read the image by its id whatever it
answered, and finds it in its lists once it accepted (``images.list_all``).

    member = await add(session, ctx, image_id, {"member": "p2"})   # pending
    await answer(session, ctx_of_p2, image_id, "p2", {"status": "accepted"})
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import Forbidden, NotFound, QuotaExceeded

from ..db.image_members import ImageMember
from ..db.models import Image, utcnow
from . import images
from .common import iso, try_insert
from .errors import conflict, forbidden, invalid

MEMBER_LIMIT = 128  # Glance's image_member_quota


def view(member: ImageMember) -> dict[str, Any]:
    return {
        "image_id": member.image_id,
        "member_id": member.member_id,
        "status": member.status,
        "created_at": iso(member.created_at),
        "updated_at": iso(member.updated_at),
        "schema": "/v2/schemas/member",
    }


async def _shared(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    """The image, readable by the caller and ``shared`` (only those have members)."""
    image = await images.get(session, ctx, image_id)
    if image.visibility != "shared":
        raise forbidden(f"Only shared images have members (image {image_id}).")
    return image


def _owner(image: Image, ctx: RequestContext) -> bool:
    return ctx.is_admin or image.owner == ctx.project_id


async def _member(session: AsyncSession, image: Image, member_id: str) -> ImageMember:
    row = await session.get(ImageMember, (image.id, member_id))
    if row is None:
        raise not_found_member(image.id, member_id)
    return row


def not_found_member(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"{member_id} not found in the member list of the image {image_id}.")


def member_of(body: Any) -> str:
    """Glance's ``{"member": "<project id>"}``, with its refusals."""
    if not isinstance(body, dict):
        raise invalid('Expected a member in the form: {"member": "image_id"}')
    if "member" not in body:
        raise invalid("Member to be added not specified")
    value = body["member"]
    if not value:
        raise invalid("Member can't be empty")
    if not isinstance(value, str) or len(value) > 255:
        raise invalid('Expected a member in the form: {"member": "image_id"}')
    return value


def status_of(body: Any) -> str:
    if not isinstance(body, dict) or "status" not in body:
        raise invalid("Status not specified")
    value = body["status"]
    if value not in images.MEMBER_STATUSES:
        raise invalid(f"Invalid status: {value}")
    return str(value)


async def add(session: AsyncSession, ctx: RequestContext, image_id: str, body: Any) -> ImageMember:
    member_id = member_of(body)
    image = await _shared(session, ctx, image_id)
    if not _owner(image, ctx):
        raise forbidden(f"Not allowed to create members for image {image_id}.")
    count = await session.scalar(
        select(func.count()).select_from(ImageMember).where(ImageMember.image_id == image_id)
    )
    if (count or 0) >= MEMBER_LIMIT:
        raise QuotaExceeded(
            f"Image member limit exceeded for image {image_id}: {MEMBER_LIMIT} allowed."
        )
    row = ImageMember(image_id=image_id, member_id=member_id, status="pending")
    if not await try_insert(session, row):
        raise conflict(f"Member {member_id} is duplicated for image {image_id}")
    return row


async def list_of(session: AsyncSession, ctx: RequestContext, image_id: str) -> list[ImageMember]:
    """All members for the owner (or an admin); a member's own membership for a member."""
    image = await _shared(session, ctx, image_id)
    query = select(ImageMember).where(ImageMember.image_id == image_id)
    if not _owner(image, ctx):
        query = query.where(ImageMember.member_id == ctx.project_id)
    rows = await session.scalars(query.order_by(ImageMember.created_at, ImageMember.member_id))
    return list(rows)


async def show(
    session: AsyncSession, ctx: RequestContext, image_id: str, member_id: str
) -> ImageMember:
    """One membership: the owner sees any, a member only its own (others: 404)."""
    try:
        image = await _shared(session, ctx, image_id)
    except Forbidden as exc:  # Glance answers 404 here where a list answers 403
        raise NotFound(exc.message) from None
    if not _owner(image, ctx) and member_id != ctx.project_id:
        raise not_found_member(image_id, member_id)
    return await _member(session, image, member_id)


async def answer(
    session: AsyncSession, ctx: RequestContext, image_id: str, member_id: str, body: Any
) -> ImageMember:
    """The member project accepts, rejects or puts back to pending (the owner may not)."""
    status = status_of(body)
    image = await _shared(session, ctx, image_id)
    if not ctx.is_admin and member_id != ctx.project_id:
        if image.owner == ctx.project_id:
            raise forbidden(f"Not allowed to update members for image {image_id}.")
        raise not_found_member(image_id, member_id)
    row = await _member(session, image, member_id)
    row.status = status
    row.updated_at = utcnow()
    await session.flush()
    return row


async def remove(session: AsyncSession, ctx: RequestContext, image_id: str, member_id: str) -> None:
    image = await _shared(session, ctx, image_id)
    if not _owner(image, ctx):
        raise forbidden(f"Not allowed to delete members for image {image_id}.")
    row = await _member(session, image, member_id)
    await session.delete(row)
    await session.flush()
