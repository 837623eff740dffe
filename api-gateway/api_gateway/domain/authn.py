"""``POST /v3/auth/tokens``: check who asks (password, token or application credential
method), then the scope (an application credential's is its project, never asked for).

    secret, info = await authenticate(deps, Auth.model_validate(body["auth"]))

Scope: a project by id or by name and domain; none given means the user's default
project when they hold a role there (Keystone's rule), else an unscoped token; the
string ``"unscoped"`` always gives one. Every failure is the same 401 for the client,
with the reason in the gateway's log, so a caller cannot tell a wrong password from an
unknown user (the password check costs as long in both cases). Password attempts go
through ``protections.check_password``: the lockout, the failed-login count and log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Invalid, Unauthorized

from ..db.models import Project, User
from ..wiring import Deps
from .app_credentials import check_secret
from .common import expecting, is_default_domain
from .protections import check_password
from .schemas import (
    ApplicationCredentialMethod,
    Auth,
    DomainRef,
    PasswordMethod,
    ProjectRef,
    Scope,
)
from .tokens import AUTH_REQUIRED, TokenInfo, project_roles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Subject:
    user_id: str
    methods: tuple[str, ...]
    default_project_id: str | None = None
    # Set for the token method: the new token stays in the old one's chain and lifetime.
    parent: TokenInfo | None = None


def _refuse(reason: str) -> Unauthorized:
    log.info("token refused: %s", reason)
    return Unauthorized(AUTH_REQUIRED)


async def authenticate(deps: Deps, request: Auth) -> tuple[str, TokenInfo]:
    """A new token's secret and what it stands for, or Keystone's 401 (400 for bad input)."""
    identity = request.identity
    for method in identity.methods:
        if not identity.has_payload(method):
            raise expecting(method, "identity")
    if identity.password is not None and "password" in identity.methods:
        subject = await _password_subject(deps, identity.password)
    elif identity.application_credential is not None and "application_credential" in (
        identity.methods
    ):
        return await _with_credential(deps, identity.application_credential, request.scope)
    elif identity.token is not None and "token" in identity.methods:
        parent = await deps.tokens.describe(identity.token.id)
        if parent is None:
            raise _refuse("the token to rescope is not valid")
        methods = tuple(dict.fromkeys(("token", *parent.methods)))
        subject = _Subject(user_id=parent.user_id, methods=methods, parent=parent)
    else:
        raise Unauthorized("Attempted to authenticate with an unsupported method.")
    project_id = await _scope(deps, subject, request.scope)
    parent = subject.parent
    return await deps.tokens.issue(
        subject.user_id,
        project_id,
        methods=subject.methods,
        not_after=parent.expires_at if parent else None,
        audit_chain_id=(parent.audit_chain_id or parent.audit_id) if parent else None,
    )


async def _with_credential(
    deps: Deps, method: ApplicationCredentialMethod, scope: Scope | str | None
) -> tuple[str, TokenInfo]:
    """A token for the credential's project, with its roles the user still holds."""
    if scope is not None:
        raise _refuse("an application credential cannot request a scope")
    credential = await check_secret(deps, method)
    if credential is None:
        raise _refuse(f"bad application credential {method.id or method.name!r}")
    return await deps.tokens.issue(
        credential.user_id,
        credential.project_id,
        methods=("application_credential",),
        not_after=credential.expires_at,
        application_credential_id=credential.id,
    )


async def _password_subject(deps: Deps, method: PasswordMethod) -> _Subject:
    ref = method.user
    if ref.id is None and ref.name is None:
        raise Invalid("Invalid input for field identity/password/user: id or name must be present.")
    async with deps.sessions() as session:
        user = await _find_user(session, ref.id, ref.name, ref.domain)
    # No password is a wrong one (Keystone: 401), checked as long as any other.
    given = ref.password if ref.password is not None else ""
    reason = await check_password(deps, user, given, who=str(ref.id or ref.name))
    if reason is not None or user is None:
        raise _refuse(f"{reason} for user {ref.id or ref.name!r}")
    stored = user.password_hash
    if stored is not None and deps.passwords.needs_rehash(stored):
        # Stronger parameters than when it was set: upgrade the hash while we know the password.
        new_hash = await deps.passwords.hash(given)
        async with deps.sessions.begin() as session:
            await session.execute(
                update(User).where(User.id == user.id).values(password_hash=new_hash)
            )
    return _Subject(
        user_id=user.id, methods=("password",), default_project_id=user.default_project_id
    )


async def _find_user(
    session: AsyncSession, user_id: str | None, name: str | None, domain: DomainRef | None
) -> User | None:
    if user_id is not None:
        return await session.get(User, user_id)
    if domain is not None and not is_default_domain(domain.id, domain.name):
        return None
    return await session.scalar(select(User).where(User.name == name))


async def _scope(deps: Deps, subject: _Subject, scope: Scope | str | None) -> str | None:
    """The project the token is for, or None for an unscoped token."""
    if scope == "unscoped":
        return None
    if scope is None:
        return await _default_project(deps, subject)
    assert isinstance(scope, Scope)
    if scope.domain is not None or scope.system is not None:
        raise _refuse("domain and system scopes are not offered")
    if scope.project is None:
        raise expecting("system, project, domain, OS-TRUST:trust or unscoped", "scope")
    async with deps.sessions() as session:
        project = await _find_project(session, scope.project)
        if project is None:
            raise _refuse(f"unknown project {scope.project.id or scope.project.name!r}")
        if not project.enabled:
            raise _refuse(f"project {project.id} is disabled")
        if not await project_roles(session, subject.user_id, project.id):
            raise _refuse(f"user {subject.user_id} has no role on project {project.id}")
    return project.id


async def _find_project(session: AsyncSession, ref: ProjectRef) -> Project | None:
    if ref.id is not None:
        return await session.get(Project, ref.id)
    if ref.name is None:
        raise Invalid("Invalid input for field scope/project: id or name must be present.")
    if ref.domain is None:
        raise expecting("domain", "project")
    if not is_default_domain(ref.domain.id, ref.domain.name):
        return None
    return await session.scalar(select(Project).where(Project.name == ref.name))


async def _default_project(deps: Deps, subject: _Subject) -> str | None:
    """Keystone scopes a token without scope to the user's usable default project."""
    project_id = subject.default_project_id
    if project_id is None:
        return None
    async with deps.sessions() as session:
        project = await session.get(Project, project_id)
        if project is None or not project.enabled:
            return None
        if not await project_roles(session, subject.user_id, project_id):
            return None
    return project_id
