"""First start of identity: the roles, an admin and a demo account, the service catalog's
rows (``catalog.seed_catalog``: what the settings configure) and a clouds.yaml.

    result = await bootstrap(runtime.sessions, settings)     # a BootstrapResult (TypedDict)
    result["admin"]   # {"username": "admin", "password": "...", "project_name": "admin",
                      #  "user_id": "...", "project_id": "...", "generated": False}
    add_lifespan(app, Bootstrap(runtime.sessions, settings))   # app.py: after migrations
    asyncio.run(prepare(settings))   # or before serving: migrate, bootstrap, print new passwords

Safe at every start and from replicas starting together. A password left empty in the
settings is generated once, kept in ``<data_dir>/credentials.json`` (mode 0600) for the
next runs and printed once; a password given in the settings is (re)applied. The
clouds ``stackling-admin`` and ``stackling-demo`` are written into
``settings.clouds_yaml_file`` (mode 0600, other clouds in that file are kept), with the
gateway's private CA as ``cacert`` when ``GATEWAY_TLS_CA_FILE`` names one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade

from ..db.models import DEFAULT_DOMAIN_NAME, Project, Role, RoleAssignment, User, new_id
from ..settings import GatewaySettings
from .auth import ROLES
from .catalog import seed_catalog
from .passwords import Passwords

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parents[1] / "db" / "migrations"
CREDENTIALS_FILE = "credentials.json"
# Two replicas may race to create the same rows: the loser retries and finds them.
ATTEMPTS = 3


class AccountResult(TypedDict):
    """One account as this start left it; ``password`` is None when unknown here."""

    username: str
    password: str | None
    project_name: str
    user_id: str
    project_id: str
    generated: bool  # by this start: printed once, then read from credentials.json


class BootstrapResult(TypedDict):
    admin: AccountResult
    demo: AccountResult
    clouds_yaml: str
    credentials_file: str


@dataclass(frozen=True)
class Account:
    key: str  # "admin" or "demo"
    username: str
    project_name: str
    role: str
    configured_password: str


def accounts(settings: GatewaySettings) -> list[Account]:
    s = settings
    return [
        Account("admin", s.admin_user, s.admin_project, "admin", s.admin_password),
        Account("demo", s.demo_user, s.demo_project, "member", s.demo_password),
    ]


async def bootstrap(
    sessions: async_sessionmaker[AsyncSession], settings: GatewaySettings
) -> BootstrapResult:
    """Create what is missing; returns each account's names, ids and password."""
    passwords = Passwords()
    wanted = accounts(settings)
    async with sessions() as session:
        existing = set(
            (
                await session.scalars(
                    select(User.name).where(User.name.in_([a.username for a in wanted]))
                )
            ).all()
        )
    # Settled before the database, so racing replicas agree on generated passwords.
    plain = await asyncio.to_thread(
        settle_passwords, settings.data_dir / CREDENTIALS_FILE, wanted, existing
    )
    done: dict[str, AccountResult] = {}
    for attempt in range(ATTEMPTS):
        try:
            for account in wanted:
                password, generated = plain[account.key]
                done[account.key] = await _ensure_account(
                    sessions, passwords, account, password, generated
                )
            break
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
            log.info("bootstrap raced another process; looking again")
    for attempt in range(ATTEMPTS):
        try:
            async with sessions.begin() as session:
                await seed_catalog(session, settings)
            break
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
            log.info("catalog seeding raced another process; looking again")
    await asyncio.to_thread(write_clouds_yaml, settings, done)
    return BootstrapResult(
        admin=done["admin"],
        demo=done["demo"],
        clouds_yaml=str(settings.clouds_yaml_file),
        credentials_file=str(settings.data_dir / CREDENTIALS_FILE),
    )


async def _ensure_account(
    sessions: async_sessionmaker[AsyncSession],
    passwords: Passwords,
    account: Account,
    password: str | None,
    generated: bool,
) -> AccountResult:
    async with sessions.begin() as session:
        await _ensure_roles(session)
        role_id = await session.scalar(select(Role.id).where(Role.name == account.role))
        project = await session.scalar(select(Project).where(Project.name == account.project_name))
        if project is None:
            project = Project(id=new_id(), name=account.project_name, description="")
            session.add(project)
            await session.flush()
        user = await session.scalar(select(User).where(User.name == account.username))
        if user is None:
            stored = await passwords.hash(password) if password else None
            user = User(
                id=new_id(),
                name=account.username,
                password_hash=stored,
                default_project_id=project.id,
            )
            session.add(user)
            await session.flush()
        elif password is not None and not await passwords.verify(user.password_hash, password):
            if account.configured_password:
                user.password_hash = await passwords.hash(password)
            else:
                # Changed over the API since it was generated: the file is out of date.
                log.warning("password of %s was changed; not written to clouds.yaml", user.name)
                password, generated = None, False
        grant = await session.get(RoleAssignment, (user.id, project.id, role_id))
        if grant is None:
            session.add(RoleAssignment(user_id=user.id, project_id=project.id, role_id=role_id))
    return AccountResult(
        username=account.username,
        password=password,
        project_name=account.project_name,
        user_id=user.id,
        project_id=project.id,
        generated=generated,
    )


async def _ensure_roles(session: AsyncSession) -> None:
    """The migration seeds the roles; this puts back any that were removed by hand."""
    present = set((await session.scalars(select(Role.name))).all())
    for name in ROLES:
        if name not in present:
            # Immutable, as the migration made them: the policy keys on these names.
            session.add(Role(id=new_id(), name=name, immutable=True))
    await session.flush()


def settle_passwords(
    path: Path, wanted: list[Account], existing: set[str]
) -> dict[str, tuple[str | None, bool]]:
    """Each account's password and whether it was generated now.

    Configured passwords win; then ones generated earlier (kept in ``path``); a new one is
    generated only for a user that does not exist yet. The file is read and written under
    an exclusive lock, so processes sharing the data directory generate one password each.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(f".{path.name}.lock")):
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        plain: dict[str, tuple[str | None, bool]] = {}
        for account in wanted:
            if account.configured_password:
                plain[account.key] = (account.configured_password, False)
            elif account.username in stored:
                plain[account.key] = (stored[account.username], False)
            elif account.username not in existing:
                stored[account.username] = secrets.token_urlsafe(18)
                plain[account.key] = (stored[account.username], True)
            else:
                plain[account.key] = (None, False)  # made by someone else: unknown here
        if any(generated for _, generated in plain.values()):
            write_private(path, json.dumps(stored, indent=2) + "\n")
    return plain


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_clouds_yaml(settings: GatewaySettings, accounts: dict[str, AccountResult]) -> None:
    """Add or refresh ``stackling-admin`` and ``stackling-demo``; other clouds stay."""
    path = settings.clouds_yaml_file
    path.parent.mkdir(parents=True, exist_ok=True)
    # Someone's clouds.yaml, whatever else it holds: only our two clouds are touched.
    document: dict[str, Any] = {}
    if path.exists():
        document = yaml.safe_load(path.read_text()) or {}
    clouds = document.setdefault("clouds", {})
    for key, account in accounts.items():
        auth = {
            "auth_url": settings.public_url.rstrip("/") + "/identity/v3",
            "username": account["username"],
            "project_name": account["project_name"],
            "user_domain_name": DEFAULT_DOMAIN_NAME,
            "project_domain_name": DEFAULT_DOMAIN_NAME,
        }
        if account["password"] is not None:
            auth["password"] = account["password"]
        cloud: dict[str, Any] = {
            "auth": auth,
            "region_name": settings.region,
            "identity_api_version": 3,
            "interface": "public",
        }
        if settings.tls_ca_file is not None:
            # The private CA of the gateway's certificate, for openstacksdk's verify.
            cloud["cacert"] = str(settings.tls_ca_file.absolute())
        clouds[f"stackling-{key}"] = cloud
    write_private(path, yaml.safe_dump(document, sort_keys=False))


def announce(result: BootstrapResult) -> None:
    """Print the passwords this run generated (once: later runs read them from the file)."""
    for account in (result["admin"], result["demo"]):
        if account["generated"]:
            print(
                f"stackling-gateway: generated password for {account['username']}: "
                f"{account['password']} (kept in {result['credentials_file']})",
                flush=True,
            )


class Bootstrap:
    """A lifespan part (``app.add_lifespan``): runs once the app has migrated its database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: GatewaySettings
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.result: BootstrapResult | None = None

    async def start(self) -> None:
        self.result = await bootstrap(self.sessions, self.settings)
        announce(self.result)

    async def stop(self) -> None:
        pass


async def prepare(settings: GatewaySettings) -> BootstrapResult:
    """Migrate the database and bootstrap it, on an engine of its own (before serving)."""
    await upgrade(settings.database_url, MIGRATIONS)
    engine = make_engine(settings.database_url)
    try:
        result = await bootstrap(make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()
    announce(result)
    return result
