"""Identity v3, shaped like Keystone: tokens, catalog, projects, users, roles, grants.

    tokens = TokenService.from_settings(runtime.sessions, settings)   # also the proxy's validator
    app.include_router(identity_router(settings, runtime.sessions, tokens), prefix="/identity")

Only the ``default`` domain exists; roles are admin, member and reader (each implying
the next). Management calls are admin-only; see ``access``.
"""

from ..domain.tokens import TokenInfo, TokenService
from .router import identity_router

__all__ = ["TokenInfo", "TokenService", "identity_router"]
