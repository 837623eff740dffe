"""TokenService on its own: issue, validate (cached), revoke, expiry, what changes end a token."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from identity_fixtures import gateway_settings
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api_gateway.db.models import Project, RoleAssignment, Token, User
from api_gateway.domain.auth import TokenValidator
from api_gateway.domain.bootstrap import MIGRATIONS, bootstrap
from api_gateway.domain.tokens import TokenService
from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade
from common_rpc.errors import Unauthorized
from common_rpc.testing import wait_for


class Clock:
    """A settable clock, so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def identity_db(
    tmp_path: Path, db_url: str
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], dict]]:
    settings = gateway_settings(tmp_path, db_url, "http://gateway.test")
    await upgrade(db_url, MIGRATIONS)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    accounts = await bootstrap(sessions, settings)
    yield sessions, accounts
    await engine.dispose()


async def test_issue_validate_revoke(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    tokens = TokenService(sessions, ttl_s=600)
    validator: TokenValidator = tokens  # what the proxy and the policy are given
    secret, info = await tokens.issue(demo["user_id"], demo["project_id"])
    auth = await validator.validate(secret)
    assert auth is not None
    assert (auth.user_id, auth.user_name) == (demo["user_id"], "demo")
    assert (auth.project_id, auth.project_name) == (demo["project_id"], "demo")
    assert auth.roles == {"member", "reader"} and not auth.is_admin
    assert auth.token_id == info.audit_id
    assert timedelta(seconds=590) < auth.expires_at - info.issued_at <= timedelta(seconds=600)
    # Only the digest is stored.
    async with sessions() as session:
        stored = (await session.scalars(select(Token.id))).all()
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert secret not in stored
    assert await tokens.revoke(secret)
    assert await tokens.validate(secret) is None
    assert not await tokens.revoke(secret)


async def test_tampered_unknown_and_expired_tokens(identity_db) -> None:
    sessions, accounts = identity_db
    admin = accounts["admin"]
    clock = Clock()
    tokens = TokenService(sessions, ttl_s=60, cache_s=300, clock=clock)
    secret, _ = await tokens.issue(admin["user_id"], admin["project_id"])
    assert (await tokens.validate(secret)).is_admin  # type: ignore[union-attr]
    for bad in ("", "x" * 300, secret[:-1], secret + "A", secret.upper()):
        assert await tokens.validate(bad) is None
    clock.now += timedelta(seconds=61)
    assert await tokens.validate(secret) is None  # expired, even though it was cached
    past, _ = await tokens.issue(admin["user_id"], admin["project_id"], ttl_s=-1)
    assert await tokens.validate(past) is None


async def test_cache_spares_the_database_until_it_expires(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    tokens = TokenService(sessions, cache_s=300)
    other_replica = TokenService(sessions, cache_s=0)
    secret, _ = await tokens.issue(demo["user_id"], demo["project_id"])
    assert await tokens.validate(secret) is not None
    # Revoked by another replica: this one trusts its cache until cache_s runs out.
    assert await other_replica.revoke(secret)
    assert await other_replica.validate(secret) is None
    assert await tokens.validate(secret) is not None
    tokens.forget()
    assert await tokens.validate(secret) is None


async def test_cache_is_bounded(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    tokens = TokenService(sessions, cache_size=3)
    for _ in range(5):
        secret, _ = await tokens.issue(demo["user_id"], demo["project_id"])
        assert await tokens.validate(secret) is not None
    assert len(tokens.cache) == 3


async def test_role_user_and_project_changes_end_tokens(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    tokens = TokenService(sessions, cache_s=0)
    scoped, _ = await tokens.issue(demo["user_id"], demo["project_id"])
    unscoped, _ = await tokens.issue(demo["user_id"], None)
    assert (await tokens.validate(unscoped)).roles == frozenset()  # type: ignore[union-attr]
    async with sessions.begin() as session:
        await session.execute(update(Project).values(enabled=False))
    assert await tokens.validate(scoped) is None
    assert await tokens.validate(unscoped) is not None
    async with sessions.begin() as session:
        await session.execute(update(Project).values(enabled=True))
        await session.execute(
            delete(RoleAssignment).where(RoleAssignment.user_id == demo["user_id"])
        )
    assert await tokens.validate(scoped) is None  # no role left on its project
    with pytest.raises(Unauthorized):
        await tokens.issue(demo["user_id"], demo["project_id"])
    async with sessions.begin() as session:
        await session.execute(update(User).values(enabled=False))
    assert await tokens.validate(unscoped) is None
    async with sessions() as session:
        count = len((await session.scalars(select(Token.id))).all())
    assert count == 2  # the refused issue left no row


async def test_revoke_user_and_purge(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    clock = Clock()
    tokens = TokenService(sessions, ttl_s=60, clock=clock)
    first, _ = await tokens.issue(demo["user_id"], demo["project_id"])
    second, _ = await tokens.issue(demo["user_id"], None)
    assert await tokens.validate(first) is not None
    assert await tokens.revoke_user(demo["user_id"]) == 2
    assert await tokens.validate(first) is None and await tokens.validate(second) is None
    assert await tokens.purge_expired() == 0
    clock.now += timedelta(days=2)
    assert await tokens.purge_expired() == 2


async def test_rescoped_token_keeps_chain_and_lifetime(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    tokens = TokenService(sessions, ttl_s=600)
    _, parent = await tokens.issue(demo["user_id"], None, ttl_s=30)
    _, child = await tokens.issue(
        demo["user_id"],
        demo["project_id"],
        methods=("token", "password"),
        not_after=parent.expires_at,
        audit_chain_id=parent.audit_id,
    )
    assert child.expires_at == parent.expires_at
    assert child.audit_chain_id == parent.audit_id and child.methods == ("token", "password")


async def test_started_service_purges_expired_tokens(identity_db) -> None:
    sessions, accounts = identity_db
    demo = accounts["demo"]
    clock = Clock()
    tokens = TokenService(sessions, ttl_s=60, clock=clock, purge_interval_s=0.01)
    await tokens.issue(demo["user_id"], demo["project_id"])
    clock.now += timedelta(days=2)

    async def purged() -> bool:
        async with sessions() as session:
            return not (await session.scalars(select(Token.id))).all()

    await tokens.start()
    try:
        assert await wait_for(purged, timeout=5)
    finally:
        await tokens.stop()
