"""Users: ``/v3/users`` (admin; a user may read itself and list its own projects).

    POST   /v3/users   {"user": {"name": "u2", "password": "pw", "default_project_id": P}} -> 201
    GET    /v3/users?name=u2            GET /v3/users/{id}            GET /v3/users/{id}/projects
    PATCH  /v3/users/{id}   {"user": {"password": "new"}}   -> 200; the user's tokens are revoked
    DELETE /v3/users/{id}   -> 204; its role assignments and tokens go with it

A password is stored only as an argon2id hash and never shown, not even as a hash.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Conflict, Invalid, NotFound

from ..db.models import Project, RoleAssignment, User, new_id
from ..domain.auth import AuthContext
from .access import authorize
from .deps import IdentityDeps
from .lookup import get_or_404, not_none, query_flag, require_default_domain
from .schemas import UserCreateBody, UserUpdateBody
from .views import collection, project_view, user_view


def duplicate_user(name: str) -> Conflict:
    return Conflict(
        "Conflict occurred attempting to store user - "
        f"Duplicate entry found with name {name} at domain ID default."
    )


async def check_project(session: AsyncSession, project_id: str | None) -> None:
    if project_id is not None and await session.get(Project, project_id) is None:
        raise Invalid(f"Could not find project for default_project_id: {project_id}.")


async def assigned_projects(
    session: AsyncSession, user_id: str, *, enabled_only: bool = False
) -> list[Project]:
    """Projects where the user holds at least one role."""
    query = (
        select(Project)
        .where(
            Project.id.in_(
                select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
            )
        )
        .order_by(Project.name)
    )
    if enabled_only:
        query = query.where(Project.enabled.is_(True))
    return list((await session.scalars(query)).all())


def users_router(deps: IdentityDeps) -> APIRouter:
    router = APIRouter()
    admin = deps.access.admin
    caller = deps.access.caller

    @router.post("/v3/users", status_code=201)
    async def create_user(
        body: UserCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_user")),
    ) -> dict[str, Any]:
        spec = body.user
        user = User(
            id=new_id(),
            name=spec.name,
            domain_id=require_default_domain(spec.domain_id),
            enabled=spec.enabled,
            default_project_id=spec.default_project_id,
            email=spec.email,
            description=spec.description,
            password_hash=await deps.passwords.hash(spec.password) if spec.password else None,
        )
        try:
            async with deps.sessions.begin() as session:
                await check_project(session, spec.default_project_id)
                session.add(user)
        except IntegrityError:
            raise duplicate_user(spec.name) from None
        return {"user": user_view(user, deps.links)}

    @router.get("/v3/users")
    async def list_users(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_users")),
        name: str | None = None,
        enabled: str | None = None,
        domain_id: str | None = None,
    ) -> dict[str, Any]:
        query = select(User).order_by(User.name)
        if name is not None:
            query = query.where(User.name == name)
        if query_flag(enabled) is not None:
            query = query.where(User.enabled == query_flag(enabled))
        if domain_id is not None:
            query = query.where(User.domain_id == domain_id)
        async with deps.sessions() as session:
            users = (await session.scalars(query)).all()
        views = [user_view(u, deps.links) for u in users]
        return collection("users", views, deps.links.collection(request))

    @router.get("/v3/users/{user_id}")
    async def show_user(user_id: str, auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        authorize("identity:get_user", auth, owner=auth.user_id == user_id)
        async with deps.sessions() as session:
            user = await get_or_404(session, User, user_id, "user")
        return {"user": user_view(user, deps.links)}

    @router.get("/v3/users/{user_id}/projects")
    async def list_user_projects(
        request: Request, user_id: str, auth: AuthContext = Depends(caller)
    ) -> dict[str, Any]:
        authorize("identity:list_user_projects", auth, owner=auth.user_id == user_id)
        async with deps.sessions() as session:
            await get_or_404(session, User, user_id, "user")
            projects = await assigned_projects(session, user_id)
        views = [project_view(p, deps.links) for p in projects]
        return collection("projects", views, deps.links.collection(request))

    @router.patch("/v3/users/{user_id}")
    async def update_user(
        user_id: str,
        body: UserUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_user")),
    ) -> dict[str, Any]:
        changes = body.user.model_dump(include=body.user.model_fields_set)
        not_none(changes, "name", "enabled")
        if "password" in changes:
            password = changes.pop("password")
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
        return {"user": user_view(user, deps.links)}

    @router.delete("/v3/users/{user_id}", status_code=204)
    async def delete_user(
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:delete_user")),
    ) -> Response:
        async with deps.sessions.begin() as session:
            # Assignments and tokens go by ON DELETE CASCADE.
            result = await session.execute(delete(User).where(User.id == user_id))
        if not result.rowcount:
            raise NotFound(f"Could not find user: {user_id}.")
        deps.tokens.forget(user_id)
        return Response(status_code=204)

    return router
