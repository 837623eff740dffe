"""The shell every agent process shares: its runtime, commands, heartbeat and reconcile loop.

An agent owns one host's share of its service (domains, bridges, exports). What differs
between agents is only the host object that does the work; the rest is here, once:

    shell = AgentShell.build(
        settings,                      # an AgentSettings subclass (COMPUTE_AGENT_..., ...)
        binary="volume-agent",
        host_object=volume_host,       # what the agent's RPC handlers get as ``deps``
        commands=handlers.rpc,         # the router of ``volume.<host>``
        host_state=HOST_STATE,         # the typed ``host_state`` method of the API's topic
        converge=volume_host.converge, # (desired state, round start) -> findings
        capabilities=volume_host.capabilities,
    )
    await shell.start(); ...; await shell.stop()

The reconcile loop is level-triggered: on start and every interval it asks the service
for everything that belongs on this host (one RPC, ``host_state``, the same name in
every service) and converges the host to it. A failed round is logged and retried at
the next tick; commands keep being served meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..agents import AgentHeartbeat
from ..context import RequestContext, use_context
from ..methods import Message, Method
from ..rpc import RpcClient, RpcRouter
from .periodic import Periodic
from .ping import ping_router
from .runtime import ServiceRuntime
from .settings import ServiceSettings

log = logging.getLogger(__name__)

HOST_STATE = "host_state"


class HostStateRequest(Message):
    """What an agent asks its service: the desired state of this host."""

    host: str


class AgentSettings(ServiceSettings):
    """The settings every agent has, under its service's prefix (``NETWORK_AGENT_...``)."""

    agent_reconcile_interval: float = 60.0
    agent_heartbeat_interval: float = 10.0
    # The API's topic: where heartbeats and ``host_state`` go (tests use their own).
    agent_api_topic: str = ""
    agent_api_timeout: float = 10.0

    def api_topic(self) -> str:
        return self.agent_api_topic or self.service_name


def agent_topic(service: str, host: str) -> str:
    """The topic of one host's agent: ``network.cn1`` (the API replicas share ``network``)."""
    return f"{service}.{host}"


def agent_identity(binary: str) -> RequestContext:
    """Agents speak to their own service as the service (admin)."""
    return RequestContext(user_id=binary, roles=frozenset({"admin", "service"}))


Converge = Callable[[Any, float], Awaitable[dict[str, Any]]]


class HostReconciler:
    """Asks the service for this host's desired state and converges the host to it."""

    def __init__(
        self,
        client: RpcClient,
        *,
        binary: str,
        host: str,
        host_state: Method[HostStateRequest, Any],
        converge: Converge,
        interval: float = 60.0,
        timeout: float = 10.0,
        api_topic: str,
    ) -> None:
        if host_state.name != HOST_STATE:
            raise ValueError(f"a reconciler asks {HOST_STATE!r}, not {host_state.name!r}")
        self.client = client
        self.binary = binary
        self.host = host
        self.host_state = host_state
        self.converge = converge
        self.timeout = timeout
        self.api_topic = api_topic
        self.rounds = 0
        self._job = Periodic(f"reconcile-{host}", self.run_once, interval=interval)

    async def run_once(self) -> dict[str, Any]:
        """One round: what the host should hold, then make it so; returns the findings."""
        started = time.monotonic()
        with use_context(agent_identity(self.binary)):
            state = await self.client.invoke(
                self.api_topic,
                self.host_state,
                HostStateRequest(host=self.host),
                timeout=self.timeout,
            )
            result = await self.converge(state, started)
        self.rounds += 1
        log.info("reconciled host %s: %s", self.host, result)
        return result

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()


Hook = Callable[[], Awaitable[None]]


@dataclass
class AgentShell:
    """One agent process: started and stopped in the order that loses no work."""

    settings: AgentSettings
    runtime: ServiceRuntime
    reconciler: HostReconciler
    heartbeat: AgentHeartbeat
    host_object: Any
    before_start: Hook | None = None
    after_stop: Hook | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> Any:
        return self.host_object

    async def start(self) -> None:
        """Prepare the host, take commands, then reconcile at once and heartbeat."""
        if self.before_start is not None:
            await self.before_start()
        await self.runtime.start()
        self.reconciler.start()
        self.heartbeat.start()

    async def stop(self) -> None:
        await self.heartbeat.stop()
        await self.reconciler.stop()
        await self.runtime.stop()
        if self.after_stop is not None:
            await self.after_stop()

    @classmethod
    def build(
        cls,
        settings: AgentSettings,
        *,
        binary: str,
        host_object: Any,
        commands: RpcRouter,
        host_state: Method[HostStateRequest, Any],
        converge: Converge,
        capabilities: Callable[[], dict[str, Any]] | None = None,
        before_start: Hook | None = None,
        after_stop: Hook | None = None,
    ) -> AgentShell:
        """The runtime serving ``<service>.<host>``, the reconciler and the heartbeat."""
        api_topic = settings.api_topic()
        own_topic = agent_topic(settings.service_name, settings.host)
        runtime = ServiceRuntime(settings, database=False, name=f"{binary}@{settings.host}")
        runtime.serve(own_topic, host_object, ping_router(own_topic, settings.host), commands)
        reconciler = HostReconciler(
            runtime.rpc,
            binary=binary,
            host=settings.host,
            host_state=host_state,
            converge=converge,
            interval=settings.agent_reconcile_interval,
            timeout=settings.agent_api_timeout,
            api_topic=api_topic,
        )
        heartbeat = AgentHeartbeat(
            runtime.rpc,
            service=api_topic,
            binary=binary,
            host=settings.host,
            topic=own_topic,
            capabilities=capabilities,
            interval_s=settings.agent_heartbeat_interval,
        )
        return cls(
            settings,
            runtime,
            reconciler,
            heartbeat,
            host_object,
            before_start=before_start,
            after_stop=after_stop,
        )
