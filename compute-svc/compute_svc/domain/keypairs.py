"""Keypairs: per user, imported or generated; the private half is shown once and not kept.

Each takes one ``key_pairs`` of the project it was made in (``domain.quotas``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.errors import NotFound

from ..db.models import Keypair
from . import quotas
from .common import iso, nova_name, text, try_insert
from .errors import bad_field, conflict, invalid

# Nova's key pair name at microversion 2.1 (``.`` and ``@`` come with 2.92).
NAME = re.compile(r"^[_\- a-zA-Z0-9]+$")


def fingerprint(public_key: str) -> str:
    """OpenSSH's legacy MD5 fingerprint of the key blob, as Nova shows it."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _checked(public_key: str) -> str:
    try:
        serialization.load_ssh_public_key(public_key.strip().encode())
    except (ValueError, TypeError, IndexError):
        raise invalid("Keypair data is invalid: failed to generate fingerprint") from None
    return public_key.strip()


def _generate() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode() + " Generated-by-Stackling"


def view(pair: Keypair, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": pair.name,
        "public_key": pair.public_key,
        "fingerprint": pair.fingerprint,
    }
    if detail:
        out |= {
            "user_id": pair.user_id,
            "id": 0,
            "created_at": iso(pair.created_at),
            "updated_at": None,
            "deleted": False,
            "deleted_at": None,
        }
    return out


def _user(ctx: RequestContext) -> str:
    if not ctx.user_id:
        raise invalid("A user-scoped token is required for keypairs.")
    return ctx.user_id


async def get(session: AsyncSession, ctx: RequestContext, name: str) -> Keypair:
    user_id = _user(ctx)
    pair = await session.get(Keypair, (user_id, name))
    if pair is None:
        raise keypair_not_found(name, user_id)
    return pair


def keypair_not_found(name: str, user_id: str) -> NotFound:
    return NotFound(f"Keypair {name} not found for user {user_id}")


def _name(body: dict[str, Any]) -> str:
    """Nova's 2.1 key pair name (its ``name`` format, then its pattern), in its words."""
    if "name" not in body:
        raise bad_field("keypair", body, "'name' is a required property")
    name = nova_name(body)
    if not NAME.match(name):
        raise bad_field("name", name, f"{name!r} does not match {NAME.pattern!r}")
    return name


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[Keypair]:
    query = select(Keypair).where(Keypair.user_id == _user(ctx)).order_by(Keypair.name)
    return list(await session.scalars(query))


async def create(
    session: AsyncSession,
    ctx: RequestContext,
    body: dict[str, Any],
    *,
    quota_defaults: Mapping[str, int],
) -> tuple[Keypair, str | None]:
    """The new keypair and, when we generated it, its private key (403 over quota)."""
    name = _name(body)
    key_type = text(body, "type", default="ssh")
    if key_type != "ssh":
        raise invalid(f"Keypair type {key_type!r} is not supported.")
    private = None
    if body.get("public_key"):
        public = _checked(text(body, "public_key", limit=16384))
    else:
        private, public = _generate()
    pair = Keypair(
        user_id=_user(ctx),
        name=name,
        project_id=ctx.project_id or "",
        public_key=public,
        fingerprint=fingerprint(public),
        key_type=key_type,
    )
    if not await try_insert(session, pair):
        raise conflict(f"Key pair '{name}' already exists.")
    await quotas.reserve_key_pair(session, pair.project_id, quota_defaults)
    return pair, private


async def remove(session: AsyncSession, ctx: RequestContext, name: str) -> None:
    """Gone, and its quota given back to the project it was made in; a parallel delete
    of the same pair that removed it first is the one that gives it back."""
    pair = await get(session, ctx, name)
    gone = await session.execute(
        delete(Keypair)
        .where(Keypair.user_id == pair.user_id, Keypair.name == pair.name)
        .execution_options(synchronize_session=False)
    )
    session.expunge(pair)
    if getattr(gone, "rowcount", 0) != 1:
        raise keypair_not_found(name, pair.user_id)
    await quotas.release_key_pair(session, pair.project_id)
