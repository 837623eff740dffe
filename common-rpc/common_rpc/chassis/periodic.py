"""A job that runs every few seconds in the background until stopped.

The loop survives the job's failures (a database outage must not end it: the next pass
retries). Stopping lets a pass in progress finish, for up to ``grace_s``, before it
cancels: a pass cancelled in the middle of a database call leaves its connection to be
torn down under the caller (with aiosqlite, a close that can wait for ever).

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

STOP_GRACE_S = 5.0


class Periodic:
    def __init__(self, name: str, job: Callable[[], Awaitable[Any]], *, interval: float) -> None:
        self.name = name
        self.job = job
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            # wait_for cancels the pass only once the grace is over
            await asyncio.wait_for(task, grace_s)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller is being cancelled, not just the job

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.job()
            except Exception:
                log.exception("%s failed; next pass in %ss", self.name, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
