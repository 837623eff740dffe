"""Users: ``/v3/users`` (admin; a user may read itself and list its own projects).

    POST   /v3/users   {"user": {"name": "u2", "password": "pw", "default_project_id": P}} -> 201
    GET    /v3/users?name=u2            GET /v3/users/{id}            GET /v3/users/{id}/projects
    PATCH  /v3/users/{id}   {"user": {"password": "new"}}   -> 200; the user's tokens are revoked
    POST   /v3/users/{id}/password  {"user": {"original_password": "pw", "password": "new"}}
           -> 204 (the user's own change: no token needed, the old password is the proof);
           401 when the old password is wrong; the user's tokens are revoked
    DELETE /v3/users/{id}   -> 204; its role assignments and tokens go with it

A password is never shown, not even as a hash. A user locked out after failed password
attempts (``domain/protections.py``) shows ``options.locked_until``; enabling it ends the
lockout.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..db.models import User
from ..domain import users
from ..domain.auth import AuthContext
from ..domain.protections import locked_until
from ..domain.tokens import utcnow
from ..wiring import Deps
from .common import Access, authorize, query_flag
from .schemas import PasswordChangeBody, UserCreateBody, UserUpdateBody
from .views import Links, collection, project_view, user_view


def users_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    access = Access(deps.tokens)
    admin, caller = access.admin, access.caller
    links = Links(deps.settings.public_url)

    def view(user: User) -> dict[str, Any]:
        until = locked_until(deps.settings, user, utcnow())
        return user_view(user, links, locked_until=until)

    @router.post("/v3/users", status_code=201)
    async def create_user(
        body: UserCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_user")),
    ) -> dict[str, Any]:
        user = await users.create_user(deps, body.user)
        return {"user": view(user)}

    @router.get("/v3/users")
    async def list_users(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_users")),
        name: str | None = None,
        enabled: str | None = None,
        domain_id: str | None = None,
    ) -> dict[str, Any]:
        found = await users.list_users(
            deps, name=name, enabled=query_flag(enabled), domain_id=domain_id
        )
        views = [view(u) for u in found]
        return collection("users", views, links.collection(request))

    @router.get("/v3/users/{user_id}")
    async def show_user(user_id: str, auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        authorize("identity:get_user", auth, owner=auth.user_id == user_id)
        user = await users.get_user(deps, user_id)
        return {"user": view(user)}

    @router.get("/v3/users/{user_id}/projects")
    async def list_user_projects(
        request: Request, user_id: str, auth: AuthContext = Depends(caller)
    ) -> dict[str, Any]:
        authorize("identity:list_user_projects", auth, owner=auth.user_id == user_id)
        found = await users.user_projects(deps, user_id)
        views = [project_view(p, links) for p in found]
        return collection("projects", views, links.collection(request))

    @router.patch("/v3/users/{user_id}")
    async def update_user(
        user_id: str,
        body: UserUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_user")),
    ) -> dict[str, Any]:
        user = await users.update_user(deps, user_id, body.user)
        return {"user": view(user)}

    @router.post("/v3/users/{user_id}/password", status_code=204)
    async def change_password(user_id: str, body: PasswordChangeBody) -> Response:
        await users.change_password(deps, user_id, body.user)
        return Response(status_code=204)

    @router.delete("/v3/users/{user_id}", status_code=204)
    async def delete_user(
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:delete_user")),
    ) -> Response:
        await users.delete_user(deps, user_id)
        return Response(status_code=204)

    return router
