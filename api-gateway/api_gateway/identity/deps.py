"""What the identity routes share: settings, database, tokens, passwords, access, links.

    deps = IdentityDeps.build(settings, runtime.sessions, tokens)
    router = projects_router(deps)

Built once per app by ``identity_router``; nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..domain.passwords import Passwords
from ..domain.tokens import TokenService
from ..settings import GatewaySettings
from .access import Access
from .views import Links


@dataclass
class IdentityDeps:
    settings: GatewaySettings
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenService
    passwords: Passwords
    access: Access
    links: Links

    @classmethod
    def build(
        cls,
        settings: GatewaySettings,
        sessions: async_sessionmaker[AsyncSession],
        tokens: TokenService,
        passwords: Passwords | None = None,
    ) -> IdentityDeps:
        return cls(
            settings=settings,
            sessions=sessions,
            tokens=tokens,
            passwords=passwords or Passwords(),
            access=Access(tokens),
            links=Links(settings.public_url),
        )
