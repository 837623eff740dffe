"""What network-api's routes, RPC handlers and pushes to the hosts share in one process.

deps = Deps.build(runtime)                     # once, in app.create_app
async with transaction(deps.sessions) as session: ...
await deps.agent("cn1").wire_port(state)       # the typed client of that host's agent
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.agents import AgentRegistry
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.rpc import RpcClient

from .clients import AgentApi
from .settings import NetworkSettings


@dataclass
class Deps:
    runtime: ServiceRuntime
    settings: NetworkSettings
    # The network-agents' heartbeats: which hosts are alive (pushes, audit, /v2.0/agents).
    agents: AgentRegistry

    @classmethod
    def build(cls, runtime: ServiceRuntime) -> Deps:
        settings = runtime.settings
        assert isinstance(settings, NetworkSettings)
        return cls(
            runtime, settings, AgentRegistry(runtime.sessions, down_after_s=settings.agent_down_s)
        )

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.runtime.sessions

    @property
    def rpc(self) -> RpcClient:
        return self.runtime.rpc

    def agent(self, host: str, *, timeout: float | None = None) -> AgentApi:
        """The network-agent of ``host``; commands' deadline ``agent_rpc_timeout_s``."""
        return AgentApi(self.rpc, host, timeout=timeout or self.settings.agent_rpc_timeout_s)
