"""A job that runs every few seconds in the background until stopped.

The loop survives the job's failures (a database outage must not end it: the next pass
retries), and stopping cancels it cleanly.

    job = Periodic("sweeper", sweeper.sweep_once, interval=30)
    job.start()
    await job.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, job: Callable[[], Awaitable[Any]], *, interval: float) -> None:
        self.name = name
        self.job = job
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.job()
            except Exception:
                log.exception("%s failed; next pass in %ss", self.name, self.interval)
            await asyncio.sleep(self.interval)
