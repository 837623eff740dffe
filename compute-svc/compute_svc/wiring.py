"""What compute's handlers get: the runtime and the clients built once per process."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from common_rpc.agents import AgentRegistry
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.contracts.volume import VolumeApi

from .clients import AgentClient, NetworkClient
from .domain.image_store import ImageStore
from .domain.port_events import PortEvents
from .settings import ComputeSettings

log = logging.getLogger(__name__)


@dataclass
class Tasks:
    """Background work of this process, one at a time per key: boots, deletes and power
    actions per server (a delete cancels the server's); each detach run has its own key.

    A task copies the caller's context, so its RPC calls act for the caller's project.
    """

    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    def start(self, server_id: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` after whatever already runs on ``server_id`` (the key) here."""
        task = asyncio.create_task(
            self._after(self.running.get(server_id), work), name=f"server-{server_id}"
        )
        self.running[server_id] = task
        task.add_done_callback(lambda t: self._done(server_id, t))
        return task

    @staticmethod
    async def _after(previous: asyncio.Task[Any] | None, work: Coroutine[Any, Any, Any]) -> Any:
        if previous is not None:
            await asyncio.wait([previous])
        return await work

    def _done(self, server_id: str, task: asyncio.Task[Any]) -> None:
        if self.running.get(server_id) is task:
            del self.running[server_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("work on server %s failed", server_id, exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until no work runs (tests)."""
        while self.running:
            await asyncio.wait(list(self.running.values()))

    async def drain(self, timeout: float) -> None:
        """At shutdown: let work finish for ``timeout`` seconds, then cancel the rest.

        A cancelled boot stays BUILD until its deadline (then ERROR); a delete stays
        DELETING and is run again: nothing is lost, it only waits.
        """
        try:
            async with asyncio.timeout(timeout):
                await self.idle()
        except TimeoutError:
            for task in list(self.running.values()):
                task.cancel()
            await asyncio.gather(*self.running.values(), return_exceptions=True)


@dataclass
class Deps:
    runtime: ServiceRuntime
    settings: ComputeSettings
    network: NetworkClient
    volume: VolumeApi
    ports: PortEvents
    images: ImageStore
    agents: AgentRegistry
    tasks: Tasks
    # This process among the replicas: the owner of the boots and deletes it runs.
    instance: str = ""

    @classmethod
    def build(cls, runtime: ServiceRuntime) -> Deps:
        settings = runtime.settings
        assert isinstance(settings, ComputeSettings)
        timeout = settings.rpc_timeout_s
        return cls(
            runtime,
            settings,
            NetworkClient(runtime.rpc, timeout=timeout),
            VolumeApi(runtime.rpc, timeout=timeout),
            PortEvents(),
            ImageStore(settings.image_store),
            AgentRegistry(runtime.sessions, down_after_s=settings.agent_down_after_s),
            Tasks(),
            f"{runtime.name}#{secrets.token_hex(4)}",
        )

    def agent(self, host: str) -> AgentClient:
        return AgentClient(self.runtime.rpc, host, timeout=self.settings.rpc_timeout_s)
