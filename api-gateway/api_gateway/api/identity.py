"""The whole Identity v3 API as one router, to be mounted under ``/identity``.

    app.include_router(identity_router(deps), prefix="/identity")
    # GET /identity (300), GET /identity/v3, POST /identity/v3/auth/tokens, ...

Only the ``default`` domain exists; roles admin, member and reader (each implying the
next) are always there, admins may add others. Management calls are admin-only
(``common.Access``). Paths here are relative to the mount point, so the prefix is
chosen by the app alone.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..wiring import Deps
from .app_credentials import app_credentials_router
from .assignments import assignments_router
from .auth import auth_router
from .catalog import catalog_router
from .domains import domains_router
from .groups import groups_router
from .projects import projects_router
from .roles import roles_router
from .users import users_router
from .versions import versions_router


def identity_router(deps: Deps) -> APIRouter:
    # The outer router: FastAPI cannot include a router whose path "" (/identity) needs a prefix.
    router = versions_router(deps.settings)
    for build in (
        auth_router,
        projects_router,
        users_router,
        roles_router,
        assignments_router,
        domains_router,
        catalog_router,
        groups_router,
        app_credentials_router,
    ):
        router.include_router(build(deps))
    return router
