"""What volume-api's routes, RPC handlers and background flows share in one process.

deps = Deps.build(runtime)                       # once, in app.create_app
await deps.agent(vol.host).create_volume(...)    # the typed client of that host's agent
deps.tasks.spawn(flows.finish_create(deps, ctx, volume_id))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.agents import AgentRegistry
from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.rpc import RpcClient

from .clients import AgentApi, ImageApi
from .settings import VolumeSettings

log = logging.getLogger(__name__)


@dataclass
class Tasks:
    """The flows that run after a request answered (create, delete, extend, snapshots).

    A process that dies mid-flow leaves its row past the deadline: the sweeper covers it.
    """

    running: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self.running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("volume flow failed", exc_info=task.exception())

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for running flows (tests, shutdown); cancel what is left after ``timeout``."""
        if not self.running:
            return
        _done, pending = await asyncio.wait(set(self.running), timeout=timeout)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class Deps:
    runtime: ServiceRuntime
    settings: VolumeSettings
    agents: AgentRegistry
    tasks: Tasks
    images: ImageApi

    @classmethod
    def build(cls, runtime: ServiceRuntime) -> Deps:
        settings = runtime.settings
        assert isinstance(settings, VolumeSettings)
        images = ImageApi(settings.image_url, timeout=settings.image_timeout)
        return cls(runtime, settings, AgentRegistry(runtime.sessions), Tasks(), images)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.runtime.sessions

    @property
    def rpc(self) -> RpcClient:
        return self.runtime.rpc

    def agent(self, host: str) -> AgentApi:
        """The volume-agent of ``host``; data copies get the longer deadline."""
        return AgentApi(
            self.rpc,
            host,
            timeout=self.settings.agent_timeout,
            copy_timeout=self.settings.agent_copy_timeout,
        )
