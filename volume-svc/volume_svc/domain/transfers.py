"""Volume transfers: a project offers an available volume; whoever shows the transfer's id
and auth key takes it, with its quota (Cinder's os-volume-transfer and volume-transfers).

    transfer, key = await create(session, ctx, {"volume_id": V, "name": "to-bob"})
    # the volume is "awaiting-transfer"; the key is shown once, only its salted hash is kept
    vol = await accept(session, ctx_of_bob, settings, transfer.id, key)
    # the volume (and its snapshots) now belong to bob's project, "available" again

The giver lists, shows and deletes the transfer (deleting gives the volume back its
``available``); the taker sees nothing of it before accepting. The giver's quota is
released and the taker's reserved in the accepting transaction, so a taker over quota gets
Cinder's 413 and nothing moves.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import Invalid

from .. import events
from ..db.models import Snapshot, Transfer, Volume, utcnow
from ..settings import VolumeSettings
from . import checks, quotas, states, volumes
from .common import iso, new_id, owns, project_of, text
from .errors import not_found

# Cinder's volume_transfer_key_length and salt length.
KEY_LENGTH = 16
_CREATE_KEYS = ("volume_id", "name", "no_snapshots")


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256((salt + key).encode()).hexdigest()


def links(base: str, project_id: str, transfer_id: str, collection: str) -> list[dict[str, str]]:
    path = f"/v3/{project_id}/{collection}/{transfer_id}"
    return [{"rel": "self", "href": base + path}, {"rel": "bookmark", "href": base + path}]


def view(
    t: Transfer, base: str, collection: str, *, detail: bool = True, history: bool = False
) -> dict[str, Any]:
    """Cinder's transfer view; ``history`` adds the 3.57 fields (``/volume-transfers``)."""
    out: dict[str, Any] = {"id": t.id, "name": t.name, "volume_id": t.volume_id}
    if detail:
        out["created_at"] = iso(t.created_at)
    out["links"] = links(base, t.source_project_id, t.id, collection)
    if detail and history:
        out |= {
            "source_project_id": t.source_project_id,
            "destination_project_id": None,
            "accepted": False,
            "no_snapshots": t.no_snapshots,
        }
    return out


async def list_all(session: AsyncSession, ctx: RequestContext, all_tenants: bool) -> list[Transfer]:
    query = select(Transfer).order_by(Transfer.created_at.desc(), Transfer.id)
    if not (ctx.is_admin and all_tenants):
        query = query.where(Transfer.source_project_id == ctx.project_id)
    return list(await session.scalars(query))


async def get(session: AsyncSession, ctx: RequestContext, transfer_id: str) -> Transfer:
    """The giver's (or an admin's) transfer; 404 for anyone else, as Cinder."""
    t = await session.get(Transfer, transfer_id)
    if t is None or not owns(ctx, t.source_project_id):
        raise not_found("Transfer", transfer_id)
    return t


async def create(
    session: AsyncSession, ctx: RequestContext, body: dict[str, Any]
) -> tuple[Transfer, str]:
    """Offer the caller's available volume; answer the transfer and its auth key."""
    extra = [k for k in body if k not in _CREATE_KEYS]
    if extra:
        raise checks.additional("transfer", body, extra)
    if "volume_id" not in body:
        raise checks.required("transfer", body, "volume_id")
    volume_id = checks.uuid_or_null(body["volume_id"], "volume_id")
    if volume_id is None:
        raise checks.field_error("volume_id", None, "None is not of type 'string'")
    name = text(body, "name")
    no_snapshots = checks.boolean(body.get("no_snapshots", False), "no_snapshots")
    vol = await volumes.get(session, ctx, str(volume_id))
    if vol.status != "available":
        raise Invalid(f"Invalid volume: status must be available (volume {vol.id} is {vol.status})")
    await states.move(session, vol, "transfer", to="awaiting-transfer")
    key = secrets.token_hex(KEY_LENGTH // 2)
    salt = secrets.token_hex(8)
    t = Transfer(
        id=new_id(), volume_id=vol.id, name=name or None, source_project_id=vol.project_id,
        salt=salt, crypt_hash=_hash(salt, key), no_snapshots=no_snapshots, created_at=utcnow(),
    )  # fmt: skip
    session.add(t)
    await session.flush()
    await volumes.emit(session, ctx, vol, events.UPDATE)
    return t, key


async def delete(session: AsyncSession, ctx: RequestContext, transfer_id: str) -> None:
    """Withdraw the offer: the volume is ``available`` again."""
    t = await get(session, ctx, transfer_id)
    vol = await session.get(Volume, t.volume_id)
    await session.delete(t)
    if vol is not None:
        await states.move(session, vol, "transfer_end", to="available")
        await volumes.emit(session, ctx, vol, events.UPDATE)


async def accept(
    session: AsyncSession,
    ctx: RequestContext,
    settings: VolumeSettings,
    transfer_id: str,
    body: Any,
) -> tuple[Transfer, Volume]:
    """Move the volume (and, unless the giver said otherwise, its snapshots) to the
    caller's project, with their quota; the transfer is gone afterwards."""
    checks.root(body, "accept")
    args = body["accept"]
    if not isinstance(args, dict):
        raise checks.field_error("accept", args, f"{args!r} is not of type 'object'")
    if "auth_key" not in args:
        raise checks.required("accept", args, "auth_key")
    key = args["auth_key"]
    if not isinstance(key, str):
        raise checks.field_error("auth_key", key, f"{key!r} is not of type 'string'")
    taker = project_of(ctx)
    t = await session.get(Transfer, transfer_id)
    if t is None:
        raise not_found("Transfer", transfer_id)
    if not hmac.compare_digest(t.crypt_hash, _hash(t.salt, key)):
        raise Invalid(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
    vol = await session.get(Volume, t.volume_id)
    if vol is None:  # pragma: no cover - the transfer goes with its volume (ON DELETE CASCADE)
        raise not_found("Transfer", transfer_id)
    giver = vol.project_id
    snaps = [] if t.no_snapshots else list(
        await session.scalars(select(Snapshot).where(Snapshot.volume_id == vol.id))
    )  # fmt: skip
    moved = {"volumes": 1, "gigabytes": vol.size + sum(s.size for s in snaps)}
    if snaps:
        moved["snapshots"] = len(snaps)
    await quotas.reserve(session, settings, taker, moved)
    await quotas.release(session, giver, moved)
    await states.move(
        session, vol, "transfer_end", to="available", project_id=taker,
        user_id=ctx.user_id or "", updated_at=utcnow(),
    )  # fmt: skip
    if snaps:
        await session.execute(
            update(Snapshot)
            .where(Snapshot.id.in_([s.id for s in snaps]))
            .values(project_id=taker, user_id=ctx.user_id or "", updated_at=utcnow())
        )
    await session.delete(t)
    await session.flush()
    await session.refresh(vol)
    await volumes.emit(session, ctx, vol, events.UPDATE)
    return t, vol
