"""What the gateway's handlers share: the runtime and the identity services, one set per process.

    deps = Deps.build(runtime)                 # app.create_app, the composition root
    app.include_router(identity_router(deps), prefix="/identity")
    auth = await deps.tokens.validate(secret)  # the proxy and the event stream ask it too

Built once by ``app.create_app`` and kept on ``app.state.deps``; nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.chassis.identity import IdentitySigner
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.chassis.startup import load_identity_key

from .domain.events import EventStream
from .domain.passwords import Passwords
from .domain.tokens import TokenService
from .settings import GatewaySettings


@dataclass
class Deps:
    runtime: ServiceRuntime
    settings: GatewaySettings
    # Issues and checks tokens; the proxy's and the event stream's ``TokenValidator``.
    tokens: TokenService
    passwords: Passwords
    # Signs the identity the proxy hands to the services (X-Stackling-Identity).
    signer: IdentitySigner
    # The process's one consumer of every event, fanned out to /v1/events clients.
    events: EventStream

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.runtime.sessions

    @classmethod
    def build(cls, runtime: ServiceRuntime) -> Deps:
        settings = runtime.settings
        assert isinstance(settings, GatewaySettings)
        key_file = settings.identity_private_key_file
        signer = load_identity_key(IdentitySigner, key_file, settings, "identity_private_key_path")
        return cls(
            runtime=runtime,
            settings=settings,
            tokens=TokenService.from_settings(runtime.sessions, settings),
            passwords=Passwords(),
            signer=signer,
            events=EventStream(runtime.broker),
        )
