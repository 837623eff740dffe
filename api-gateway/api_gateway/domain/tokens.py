"""Bearer tokens: random secrets of which only a SHA-256 digest is stored.

    tokens = TokenService.from_settings(runtime.sessions, settings)
    secret, info = await tokens.issue(user_id, project_id)   # secret: X-Subject-Token
    auth = await tokens.validate(secret)     # AuthContext, or None (unknown/expired/revoked)
    await tokens.revoke(secret)              # None from now on; at once in this process
    add_lifespan(app, tokens)                # start/stop: purges long-expired tokens hourly

Revocation. A token stops working when it is revoked, expires, its user is disabled or
deleted, the user's password changes (``revoke_user``), its project is disabled or
deleted, or its user no longer holds any role on its project (roles are read when a token
is validated, not frozen at issue: a removed grant, group membership or group grant, or a
deleted role, is gone from the token too). No service has to be told: services never see
a client's token. The gateway validates the token on every proxied request and only then
signs the identity it forwards (``X-Stackling-Identity``, checked by each service's chassis
per request), so a request the gateway refuses never reaches a service, and a signed
identity, reused per token for a few minutes, is re-signed as soon as what the token
stands for changes. ``validate`` runs on every proxied request, so a validated token is
remembered for ``cache_s`` seconds (``GATEWAY_TOKEN_CACHE_S``); the process that made the
change forgets at once (``forget``). The bound on every service is therefore
``token_cache_s`` for requests through another replica, and for an open event stream
(``/v1/events``), which rechecks its token every ``max(token_cache_s, 1)`` seconds, that
plus ``token_cache_s``. ``tests/test_identity_revocation.py`` measures it through a
service behind two gateway replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.errors import Unauthorized

from ..db.models import (
    ApplicationCredential,
    ApplicationCredentialRole,
    GroupMembership,
    GroupRoleAssignment,
    Project,
    Role,
    RoleAssignment,
    Token,
    User,
)
from ..settings import GatewaySettings
from .auth import AuthContext, effective_roles
from .token_cache import TokenCache

log = logging.getLogger(__name__)

AUTH_REQUIRED = "The request you have made requires authentication."
# Far above any real token; anything longer is not worth hashing.
MAX_TOKEN_LENGTH = 256


def utcnow() -> datetime:
    return datetime.now(UTC)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RoleRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class CredentialRef:
    """The application credential a token was got with."""

    id: str
    name: str
    restricted: bool


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a token stands for now: its user, scope and effective roles."""

    audit_id: str
    audit_chain_id: str | None
    methods: tuple[str, ...]
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[RoleRef, ...]
    issued_at: datetime
    expires_at: datetime
    application_credential: CredentialRef | None = None

    @property
    def auth(self) -> AuthContext:
        return AuthContext(
            token_id=self.audit_id,
            user_id=self.user_id,
            user_name=self.user_name,
            project_id=self.project_id,
            project_name=self.project_name,
            roles=frozenset(role.name for role in self.roles),
            expires_at=self.expires_at,
            restricted=(
                self.application_credential is not None and self.application_credential.restricted
            ),
        )


class TokenService:
    """Issues, validates and revokes tokens; the gateway's ``TokenValidator``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl_s: int = 3600,
        cache_s: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], datetime] = utcnow,
        purge_interval_s: float = 3600.0,
    ) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.clock = clock
        self.purge_interval_s = purge_interval_s
        self.cache: TokenCache[TokenInfo] = TokenCache(cache_s, cache_size)
        self._purger: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, sessions: async_sessionmaker[AsyncSession], settings: GatewaySettings
    ) -> TokenService:
        return cls(sessions, ttl_s=settings.token_ttl_s, cache_s=settings.token_cache_s)

    async def issue(
        self,
        user_id: str,
        project_id: str | None = None,
        *,
        methods: Sequence[str] = ("password",),
        ttl_s: int | None = None,
        not_after: datetime | None = None,
        audit_chain_id: str | None = None,
        application_credential_id: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token for an authenticated user; the secret is returned once, never stored.

        Raises ``Unauthorized`` when the user or project is disabled or, for a scoped
        token, the user has no role on the project. ``not_after`` caps the expiry (a
        rescoped token never outlives the one it came from).
        """
        now = self.clock()
        expires_at = now + timedelta(seconds=self.ttl_s if ttl_s is None else ttl_s)
        if not_after is not None:
            expires_at = min(expires_at, not_after)
        secret = secrets.token_urlsafe(32)
        digest = token_digest(secret)
        try:
            async with self.sessions.begin() as session:
                session.add(
                    Token(
                        id=digest,
                        audit_id=secrets.token_urlsafe(16),
                        audit_chain_id=audit_chain_id,
                        methods=",".join(methods),
                        user_id=user_id,
                        project_id=project_id,
                        issued_at=now,
                        expires_at=expires_at,
                        application_credential_id=application_credential_id,
                    )
                )
                await session.flush()
                info = await self._load(session, digest, now=None)
                if info is None:
                    # Rolled back with the transaction: no token row is left behind.
                    raise Unauthorized(AUTH_REQUIRED)
        except IntegrityError:
            # The user or project was deleted while the request was authenticated.
            raise Unauthorized(AUTH_REQUIRED) from None
        return secret, info

    async def validate(self, token: str) -> AuthContext | None:
        info = await self.describe(token)
        return info.auth if info is not None else None

    async def describe(self, token: str) -> TokenInfo | None:
        """What a usable token stands for, or None (unknown, expired, revoked, disabled)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        digest = token_digest(token)
        cached = self.cache.get(digest, self.clock())
        if cached is not None:
            return cached
        epoch = self.cache.epoch
        async with self.sessions() as session:
            info = await self._load(session, digest, now=self.clock())
        if info is not None:
            self.cache.put(digest, info, epoch)
        return info

    async def revoke(self, token: str) -> bool:
        """Revoke one token; False when it was unknown or already revoked."""
        digest = token_digest(token)
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Token)
                .where(Token.id == digest, Token.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        self.cache.drop(digest)
        return _rowcount(result) == 1

    async def revoke_user(self, user_id: str) -> int:
        """Revoke every token of a user (a password change); returns how many."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Token)
                .where(Token.user_id == user_id, Token.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        self.forget(user_id)
        return _rowcount(result)

    def forget(self, user_id: str | None = None) -> None:
        """Drop cached validations (of one user, or all) after an identity change."""
        self.cache.forget(user_id)

    async def purge_expired(self, keep: timedelta = timedelta(days=1)) -> int:
        """Delete tokens expired for longer than ``keep``; returns how many."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                delete(Token).where(Token.expires_at < self.clock() - keep)
            )
        return _rowcount(result)

    async def start(self) -> None:
        """Purge long-expired tokens every ``purge_interval_s`` (an ``app.add_lifespan`` part)."""
        if self._purger is None:
            self._purger = asyncio.create_task(self._purge_forever(), name="token-purge")

    async def stop(self) -> None:
        task, self._purger = self._purger, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _purge_forever(self) -> None:
        while True:
            try:
                if purged := await self.purge_expired():
                    log.info("purged %d expired tokens", purged)
            except Exception:
                # A database outage must not end the loop: the next pass retries.
                log.exception("token purge failed; next pass in %ss", self.purge_interval_s)
            await asyncio.sleep(self.purge_interval_s)

    async def _load(
        self, session: AsyncSession, digest: str, *, now: datetime | None
    ) -> TokenInfo | None:
        """Read a token; ``now`` None skips the expiry and revocation checks (at issue)."""
        row = (
            await session.execute(
                select(Token, User.name, User.enabled, Project.name, Project.enabled)
                .join(User, User.id == Token.user_id)
                .outerjoin(Project, Project.id == Token.project_id)
                .where(Token.id == digest)
            )
        ).one_or_none()
        if row is None:
            return None
        token, user_name, user_enabled, project_name, project_enabled = row
        if now is not None and (token.revoked_at is not None or token.expires_at <= now):
            return None
        if not user_enabled or (token.project_id is not None and not project_enabled):
            return None
        roles: tuple[RoleRef, ...] = ()
        if token.project_id is not None:
            roles = await project_roles(session, token.user_id, token.project_id)
        credential: CredentialRef | None = None
        if token.application_credential_id is not None:
            credential, roles = await _credential_roles(
                session, token.application_credential_id, roles
            )
        if token.project_id is not None and not roles:
            return None
        return TokenInfo(
            audit_id=token.audit_id,
            audit_chain_id=token.audit_chain_id,
            methods=tuple(token.methods.split(",")),
            user_id=token.user_id,
            user_name=user_name,
            project_id=token.project_id,
            project_name=project_name,
            roles=roles,
            issued_at=token.issued_at,
            expires_at=token.expires_at,
            application_credential=credential,
        )


async def project_roles(
    session: AsyncSession, user_id: str, project_id: str
) -> tuple[RoleRef, ...]:
    """The user's effective roles on a project, by name: granted to the user or to a group
    it is a member of, with the roles they imply (admin brings member and reader)."""
    direct = select(RoleAssignment.role_id).where(
        RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id
    )
    via_groups = (
        select(GroupRoleAssignment.role_id)
        .join(GroupMembership, GroupMembership.group_id == GroupRoleAssignment.group_id)
        .where(GroupMembership.user_id == user_id, GroupRoleAssignment.project_id == project_id)
    )
    assigned = set(
        (
            await session.scalars(select(Role.name).where(Role.id.in_(direct.union(via_groups))))
        ).all()
    )
    if not assigned:
        return ()
    names = effective_roles(assigned)
    rows = (await session.execute(select(Role.id, Role.name).where(Role.name.in_(names)))).all()
    return tuple(sorted((RoleRef(id=r.id, name=r.name) for r in rows), key=lambda r: r.name))


async def _credential_roles(
    session: AsyncSession, credential_id: str, held: tuple[RoleRef, ...]
) -> tuple[CredentialRef | None, tuple[RoleRef, ...]]:
    """The roles a credential's token carries: those the credential names that its user
    still holds, with what they imply (never more than the user holds now)."""
    credential = await session.get(ApplicationCredential, credential_id)
    if credential is None:
        return None, ()
    named = set(
        (
            await session.scalars(
                select(Role.name)
                .join(ApplicationCredentialRole, ApplicationCredentialRole.role_id == Role.id)
                .where(ApplicationCredentialRole.application_credential_id == credential_id)
            )
        ).all()
    )
    held_names = {role.name for role in held}
    allowed = effective_roles(named & held_names) & held_names
    ref = CredentialRef(credential.id, credential.name, not credential.unrestricted)
    return ref, tuple(role for role in held if role.name in allowed)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
