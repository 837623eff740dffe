"""Idempotent creates: an ``Idempotency-Key`` header makes a retried POST safe (EC2 ClientToken).

    app = FastAPI(middleware=[
        ...,   # after IdentityMiddleware: keys are kept per project
        Middleware(IdempotencyMiddleware, sessions=runtime.sessions, fault_formatter=nova_fault),
    ])

    POST /servers  Idempotency-Key: boot-42            -> 202, server s1 created
    POST /servers  Idempotency-Key: boot-42            -> the same 202 byte for byte,
                                                          Idempotent-Replayed: true, nothing created
    POST /servers  Idempotency-Key: boot-42 (new body) -> 409, the key was used for another request
    await purge_expired(sessions)                      # keys older than 24 h, from a periodic job

The first request claims (project, key) by inserting a row: the primary key lets exactly
one of many concurrent retries run the create; the others answer 409 while it runs and
replay its answer afterwards. Only 2xx answers are kept: a failed attempt frees the key so
the client may retry with it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import current_context
from ..tables import idempotency_keys
from .faults import FaultFormatter, nova_fault
from .middleware import send_fault

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL = timedelta(hours=24)
# Project of requests served without an identity (public paths, tests).
NO_PROJECT = "-"

_KEY_HEADER = IDEMPOTENCY_HEADER.lower().encode()
_REPLAYED = (REPLAYED_HEADER.lower().encode(), b"true")
# EC2's ClientToken: up to 64 printable ASCII characters.
_VALID_KEY = re.compile(rb"^[\x20-\x7e]{1,64}$")
# A claim lost to a holder that then freed or expired the key is retried this many times.
_CLAIM_ATTEMPTS = 3

_t = idempotency_keys
_c = idempotency_keys.c


@dataclass
class _Captured:
    """The response of the first request, held back until it is stored."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    started: bool = False


class IdempotencyMiddleware:
    """Runs a POST carrying ``Idempotency-Key`` at most once per (project, key) and ``ttl``."""

    def __init__(
        self,
        app: ASGIApp,
        sessions: async_sessionmaker[AsyncSession],
        *,
        fault_formatter: FaultFormatter = nova_fault,
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.formatter = fault_formatter
        self.ttl = ttl

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_key = _header(scope, _KEY_HEADER) if scope["type"] == "http" else None
        if raw_key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not _VALID_KEY.match(raw_key):
            await send_fault(
                send,
                self.formatter,
                400,
                f"{IDEMPOTENCY_HEADER} must be 1 to 64 printable ASCII characters.",
            )
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body: nobody to answer
        key = raw_key.decode("ascii")
        project = current_context().project_id or NO_PROJECT
        method_path = _method_path(scope)
        body_hash = hashlib.sha256(body).hexdigest()

        claimed_at, holder = await self._claim(project, key, method_path, body_hash)
        if claimed_at is None:
            await self._answer_holder(send, holder, method_path, body_hash)
            return

        captured = _Captured()
        try:
            await self.app(scope, _replaying(body, receive), _capturing(captured))
        except Exception:
            await self._release(project, key, claimed_at)
            raise
        if captured.started and 200 <= captured.status < 300:
            await self._store(project, key, claimed_at, captured)
        else:
            await self._release(project, key, claimed_at)
        if not captured.started:
            raise RuntimeError("the application returned without starting a response")
        await _send_response(send, captured.status, captured.headers, bytes(captured.body))

    async def _claim(
        self, project: str, key: str, method_path: str, body_hash: str
    ) -> tuple[datetime | None, Row[Any] | None]:
        """``(claimed_at, None)`` when this request now holds the key, else ``(None, row)``."""
        for _ in range(_CLAIM_ATTEMPTS):
            now = datetime.now(UTC)
            try:
                async with self.sessions.begin() as session:
                    await session.execute(
                        insert(_t).values(
                            project_id=project,
                            key=key,
                            method_path=method_path,
                            body_hash=body_hash,
                            created_at=now,
                        )
                    )
                return now, None
            except IntegrityError:
                pass  # the primary key says someone holds it: look at what they hold
            async with self.sessions.begin() as session:
                row = (
                    await session.execute(select(_t).where(_c.project_id == project, _c.key == key))
                ).first()
                if row is None:
                    continue  # the holder failed and freed the key meanwhile
                if _aware(row.created_at) >= now - self.ttl:
                    return None, row
                # Expired: drop it (only if still expired, another request may have replaced it).
                await session.execute(
                    delete(_t).where(
                        _c.project_id == project, _c.key == key, _c.created_at < now - self.ttl
                    )
                )
        return None, None

    async def _answer_holder(
        self, send: Send, row: Row[Any] | None, method_path: str, body_hash: str
    ) -> None:
        if row is not None and (row.method_path != method_path or row.body_hash != body_hash):
            await send_fault(
                send,
                self.formatter,
                409,
                f"This {IDEMPOTENCY_HEADER} was already used for another request; "
                "use a new key for a different request.",
            )
        elif row is None or row.status_code is None:
            await send_fault(
                send,
                self.formatter,
                409,
                f"A request with this {IDEMPOTENCY_HEADER} is still in progress.",
            )
        else:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in row.response_headers]
            await _send_response(send, row.status_code, [*headers, _REPLAYED], row.response_body)

    async def _store(self, project: str, key: str, claimed_at: datetime, resp: _Captured) -> None:
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(_t)
                    .where(_c.project_id == project, _c.key == key, _c.created_at == claimed_at)
                    .values(
                        status_code=resp.status,
                        response_headers=[
                            [k.decode("latin-1"), v.decode("latin-1")] for k, v in resp.headers
                        ],
                        response_body=bytes(resp.body),
                    )
                )
        except Exception:
            # The create happened, so the client still gets its answer; the key stays claimed.
            log.exception("could not store the response for %s %r", IDEMPOTENCY_HEADER, key)

    async def _release(self, project: str, key: str, claimed_at: datetime) -> None:
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    delete(_t).where(
                        _c.project_id == project, _c.key == key, _c.created_at == claimed_at
                    )
                )
        except Exception:
            log.exception("could not free %s %r after a failed request", IDEMPOTENCY_HEADER, key)


async def purge_expired(
    sessions: async_sessionmaker[AsyncSession], *, ttl: timedelta = DEFAULT_TTL
) -> int:
    """Delete keys older than ``ttl``; returns how many went."""
    async with sessions.begin() as session:
        result = await session.execute(delete(_t).where(_c.created_at < datetime.now(UTC) - ttl))
    return int(getattr(result, "rowcount", 0) or 0)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _method_path(scope: Scope) -> str:
    path = f"{scope['method']} {scope.get('root_path', '')}{scope['path']}"
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _aware(value: datetime) -> datetime:
    # SQLite hands DateTime(timezone=True) back naive; we only ever write UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body we already read, then the real channel."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _capturing(captured: _Captured) -> Send:
    async def capture(message: Message) -> None:
        if message["type"] == "http.response.start":
            captured.started = True
            captured.status = message["status"]
            captured.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        elif message["type"] == "http.response.body":
            captured.body += message.get("body", b"")

    return capture


async def _send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
