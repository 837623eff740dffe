"""Users of the one domain: create, find, change (password too) and delete.

    user = await create_user(deps, UserCreate(name="u2", password="pw"))   # 409 for a taken name
    await user_projects(deps, user.id)                                      # where it has a role
    await update_user(deps, user.id, UserUpdate(password="new"))   # its tokens are revoked
    await change_password(deps, user.id, PasswordChange(original_password="pw", password="new"))
    await delete_user(deps, user.id)     # its role assignments and tokens go with it

A password is stored only as an argon2id hash (``Passwords``) and never shown.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Conflict, Invalid, NotFound, Unauthorized

from ..db.models import Project, User, new_id
from ..wiring import Deps
from .common import get_or_404, not_none, require_default_domain
from .projects import assigned_projects
from .protections import check_password, check_password_rules
from .schemas import PasswordChange, UserCreate, UserUpdate


def duplicate_user(name: str) -> Conflict:
    return Conflict(
        "Conflict occurred attempting to store user - "
        f"Duplicate entry found with name {name} at domain ID default."
    )


async def check_project(session: AsyncSession, project_id: str | None) -> None:
    if project_id is not None and await session.get(Project, project_id) is None:
        raise Invalid(f"Could not find project for default_project_id: {project_id}.")


async def create_user(deps: Deps, spec: UserCreate) -> User:
    if spec.password:
        check_password_rules(deps.settings, spec.password)
    user = User(
        id=new_id(),
        name=spec.name,
        domain_id=require_default_domain(spec.domain_id),
        enabled=spec.enabled,
        default_project_id=spec.default_project_id,
        email=spec.email,
        description=spec.description,
        password_hash=await deps.passwords.hash(spec.password) if spec.password else None,
        failed_auth_count=0,
        ignore_lockout=spec.options.ignore_lockout_failure_attempts if spec.options else None,
    )
    try:
        async with deps.sessions.begin() as session:
            await check_project(session, spec.default_project_id)
            session.add(user)
    except IntegrityError:
        raise duplicate_user(spec.name) from None
    return user


async def list_users(
    deps: Deps,
    *,
    name: str | None = None,
    enabled: bool | None = None,
    domain_id: str | None = None,
) -> list[User]:
    query = select(User).order_by(User.name)
    if name is not None:
        query = query.where(User.name == name)
    if enabled is not None:
        query = query.where(User.enabled == enabled)
    if domain_id is not None:
        query = query.where(User.domain_id == domain_id)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_user(deps: Deps, user_id: str) -> User:
    async with deps.sessions() as session:
        return await get_or_404(session, User, user_id, "user")


async def user_projects(deps: Deps, user_id: str) -> list[Project]:
    """The projects an existing user holds a role on (disabled ones too)."""
    async with deps.sessions() as session:
        await get_or_404(session, User, user_id, "user")
        return await assigned_projects(session, user_id)


async def update_user(deps: Deps, user_id: str, spec: UserUpdate) -> User:
    """Apply the attributes the client gave (``model_fields_set``)."""
    changes = spec.model_dump(include=spec.model_fields_set)
    not_none(changes, "name", "enabled")
    options = changes.pop("options", None) or {}
    if "ignore_lockout_failure_attempts" in options:
        changes["ignore_lockout"] = options["ignore_lockout_failure_attempts"]
    if changes.get("enabled") is True:
        # Keystone: enabling a user is how an admin ends its lockout.
        changes.update(failed_auth_count=0, failed_auth_at=None)
    if "password" in changes:
        password = changes.pop("password")
        if password:
            check_password_rules(deps.settings, password)
        changes["password_hash"] = await deps.passwords.hash(password) if password else None
    try:
        async with deps.sessions.begin() as session:
            user = await get_or_404(session, User, user_id, "user")
            await check_project(session, changes.get("default_project_id"))
            for key, value in changes.items():
                setattr(user, key, value)
    except IntegrityError:
        raise duplicate_user(str(changes.get("name"))) from None
    if "password_hash" in changes:
        # As Keystone: a new password revokes the tokens got with the old one.
        await deps.tokens.revoke_user(user_id)
    elif changes.get("enabled") is False:
        deps.tokens.forget(user_id)
    return user


async def change_password(deps: Deps, user_id: str, spec: PasswordChange) -> None:
    """A user's own change: the original password is the proof (no token needed, as in
    Keystone, so a user whose tokens were all revoked can still change it). Every failure
    is the same 401 (and counts toward the lockout); a new password breaking the password
    rules is a 400; the new password revokes the user's tokens."""
    async with deps.sessions() as session:
        user = await session.get(User, user_id)
    # Counted toward the lockout, and refused while locked, as a login would be.
    if await check_password(deps, user, spec.original_password, who=user_id) is not None:
        raise Unauthorized("Error when changing user password: Invalid user / password")
    check_password_rules(deps.settings, spec.password)
    new_hash = await deps.passwords.hash(spec.password)
    async with deps.sessions.begin() as session:
        row = await get_or_404(session, User, user_id, "user")
        row.password_hash = new_hash
    await deps.tokens.revoke_user(user_id)


async def delete_user(deps: Deps, user_id: str) -> None:
    async with deps.sessions.begin() as session:
        # Assignments and tokens go by ON DELETE CASCADE.
        result = await session.execute(delete(User).where(User.id == user_id))
    if not result.rowcount:
        raise NotFound(f"Could not find user: {user_id}.")
    deps.tokens.forget(user_id)
