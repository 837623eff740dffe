"""VolumeService: what routes, RPC handlers and background flows share in one process.

service = VolumeService(runtime, settings)
service.agent(vol.host).create_volume(...)   # the AgentApi of that host
service.spawn(flows.finish_create(service, ctx, volume_id))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.chassis.runtime import ServiceRuntime
from common_rpc.rpc import RpcClient

from .rpc.agent_api import AgentApi
from .settings import VolumeSettings

log = logging.getLogger(__name__)


class VolumeService:
    def __init__(self, runtime: ServiceRuntime, settings: VolumeSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.runtime.sessions

    @property
    def rpc(self) -> RpcClient:
        return self.runtime.rpc

    def agent(self, host: str) -> AgentApi:
        return AgentApi(
            self.rpc,
            host,
            timeout=self.settings.agent_timeout,
            copy_timeout=self.settings.agent_copy_timeout,
        )

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a flow after the request answered; the sweeper covers a process that dies."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("volume flow failed", exc_info=task.exception())

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for running flows (tests, shutdown); cancel what is left after ``timeout``."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
