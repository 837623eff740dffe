"""Application credentials: a secret a user makes so an application can act on one project
with some of the user's roles, without the user's password (Keystone's).

    cred, secret = await create_credential(deps, auth, user_id, ApplicationCredentialCreate(
        name="ci", roles=[RoleNameOrId(name="member")]))   # the secret is shown once
    await list_credentials(deps, user_id, name="ci"); await get_credential(deps, user_id, id)
    await delete_credential(deps, user_id, cred.id)         # its tokens go with it
    cred = await check_secret(deps, ApplicationCredentialMethod(id=cred.id, secret=secret))

The project is the creating token's and the roles a subset of what that token holds (a
credential never grants more than its maker had). A token got with one carries only the
credential's roles that the user still holds (``tokens._credential_roles``), so a grant
removed from the user is removed from its credentials too. Only the argon2id hash of the
secret is stored.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Conflict, Forbidden, Invalid, NotFound

from ..db.models import ApplicationCredential, ApplicationCredentialRole, Role, User, new_id
from ..wiring import Deps
from .assignments import assignment_not_found
from .auth import AuthContext
from .common import is_default_domain
from .schemas import (
    ApplicationCredentialCreate,
    ApplicationCredentialMethod,
    CredentialUser,
    RoleNameOrId,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credential:
    row: ApplicationCredential
    roles: tuple[Role, ...]


def credential_not_found(credential_id: str) -> NotFound:
    return NotFound(f"Could not find Application Credential: {credential_id}.")


def refuse_restricted(auth: AuthContext) -> None:
    """Keystone: a restricted credential's token may not manage credentials."""
    if auth.restricted:
        raise Forbidden(
            "Using method 'application_credential' is not allowed for managing additional "
            "application credentials."
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def _roles_of(session: AsyncSession, credential_ids: list[str]) -> dict[str, list[Role]]:
    rows = await session.execute(
        select(ApplicationCredentialRole.application_credential_id, Role)
        .join(Role, Role.id == ApplicationCredentialRole.role_id)
        .where(ApplicationCredentialRole.application_credential_id.in_(credential_ids))
        .order_by(Role.name)
    )
    found: dict[str, list[Role]] = {}
    for credential_id, role in rows.all():
        found.setdefault(credential_id, []).append(role)
    return found


async def create_credential(
    deps: Deps, auth: AuthContext, user_id: str, spec: ApplicationCredentialCreate
) -> tuple[Credential, str]:
    """A new credential of the caller (``user_id`` is the caller) and its secret."""
    refuse_restricted(auth)
    if auth.project_id is None:
        raise Invalid("Application credentials are made with a project-scoped token.")
    if spec.access_rules:
        raise Invalid("Access rules are not supported.")
    expires_at = _utc(spec.expires_at)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise Invalid("The expiration time of an application credential must be in the future.")
    secret = spec.secret or secrets.token_urlsafe(64)
    async with deps.sessions() as session:
        all_roles = (await session.scalars(select(Role))).all()
    by_id = {role.id: role for role in all_roles}
    by_name = {role.name: role for role in all_roles}
    wanted: list[Role] = []
    # None or empty: every role the creating token holds, as Keystone does.
    refs = spec.roles or [RoleNameOrId(name=name) for name in sorted(auth.roles)]
    for ref in refs:
        role = by_id.get(ref.id) if ref.id else by_name.get(ref.name or "")
        # Only what the creating token holds: never more than the maker had.
        if role is None or role.name not in auth.roles:
            raise assignment_not_found(auth.project_id, user_id, ref.id or str(ref.name))
        if role not in wanted:
            wanted.append(role)
    row = ApplicationCredential(
        id=new_id(),
        name=spec.name,
        description=spec.description,
        user_id=user_id,
        project_id=auth.project_id,
        secret_hash=await deps.passwords.hash(secret),
        expires_at=expires_at,
        unrestricted=spec.unrestricted,
    )
    try:
        async with deps.sessions.begin() as session:
            session.add(row)
            await session.flush()
            for role in wanted:
                session.add(
                    ApplicationCredentialRole(application_credential_id=row.id, role_id=role.id)
                )
    except IntegrityError:
        raise Conflict(
            "Conflict occurred attempting to store application_credential - "
            f"Duplicate entry found with name {spec.name}."
        ) from None
    return Credential(row, tuple(sorted(wanted, key=lambda r: r.name))), secret


async def list_credentials(
    deps: Deps, user_id: str, *, name: str | None = None
) -> list[Credential]:
    query = (
        select(ApplicationCredential)
        .where(ApplicationCredential.user_id == user_id)
        .order_by(ApplicationCredential.name)
    )
    if name is not None:
        query = query.where(ApplicationCredential.name == name)
    async with deps.sessions() as session:
        if await session.get(User, user_id) is None:
            raise NotFound(f"Could not find user: {user_id}.")
        rows = list((await session.scalars(query)).all())
        roles = await _roles_of(session, [row.id for row in rows])
    return [Credential(row, tuple(roles.get(row.id, ()))) for row in rows]


async def get_credential(deps: Deps, user_id: str, credential_id: str) -> Credential:
    async with deps.sessions() as session:
        row = await session.get(ApplicationCredential, credential_id)
        if row is None or row.user_id != user_id:
            raise credential_not_found(credential_id)
        roles = await _roles_of(session, [row.id])
    return Credential(row, tuple(roles.get(row.id, ())))


async def delete_credential(deps: Deps, user_id: str, credential_id: str) -> None:
    async with deps.sessions.begin() as session:
        # Tokens got with it go by ON DELETE CASCADE.
        result = await session.execute(
            delete(ApplicationCredential).where(
                ApplicationCredential.id == credential_id,
                ApplicationCredential.user_id == user_id,
            )
        )
    if not result.rowcount:
        raise credential_not_found(credential_id)
    deps.tokens.forget(user_id)


async def _owner_id(session: AsyncSession, ref: CredentialUser) -> str | None:
    if ref.id is not None:
        return ref.id
    if ref.name is None or ref.domain is None:
        raise Invalid(
            "Invalid input for field identity/application_credential/user: "
            "id, or name and domain, must be present."
        )
    if not is_default_domain(ref.domain.id, ref.domain.name):
        return None
    return await session.scalar(select(User.id).where(User.name == ref.name))


async def check_secret(
    deps: Deps, method: ApplicationCredentialMethod
) -> ApplicationCredential | None:
    """The credential the method names when its secret matches and it has not expired."""
    async with deps.sessions() as session:
        row: ApplicationCredential | None = None
        if method.id is not None:
            row = await session.get(ApplicationCredential, method.id)
        elif method.name is not None and method.user is not None:
            owner = await _owner_id(session, method.user)
            if owner is not None:
                row = await session.scalar(
                    select(ApplicationCredential).where(
                        ApplicationCredential.user_id == owner,
                        ApplicationCredential.name == method.name,
                    )
                )
        else:
            raise Invalid(
                "Invalid input for field identity/application_credential: "
                "id, or name and user, must be present."
            )
    # Checked as long for an unknown credential as for a wrong secret.
    stored = row.secret_hash if row is not None else None
    if not await deps.passwords.verify(stored, method.secret) or row is None:
        return None
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        return None
    return row
