"""The whole Identity v3 API as one router, to be mounted under ``/identity``.

    tokens = TokenService.from_settings(runtime.sessions, settings)
    app.include_router(identity_router(settings, runtime.sessions, tokens), prefix="/identity")
    # GET /identity (300), GET /identity/v3, POST /identity/v3/auth/tokens, ...

Paths here are relative to the mount point, so the prefix is chosen by the app alone.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..domain.passwords import Passwords
from ..domain.tokens import TokenService
from ..settings import GatewaySettings
from .assignments import assignments_router
from .auth_routes import auth_router
from .deps import IdentityDeps
from .domains import domains_router
from .projects import projects_router
from .roles import roles_router
from .users import users_router
from .versions import versions_router


def identity_router(
    settings: GatewaySettings,
    sessions: async_sessionmaker[AsyncSession],
    tokens: TokenService,
    *,
    passwords: Passwords | None = None,
) -> APIRouter:
    deps = IdentityDeps.build(settings, sessions, tokens, passwords)
    # The outer router: FastAPI cannot include a router whose path "" (/identity) needs a prefix.
    router = versions_router(settings)
    for build in (
        auth_router,
        projects_router,
        users_router,
        roles_router,
        assignments_router,
        domains_router,
    ):
        router.include_router(build(deps))
    return router
