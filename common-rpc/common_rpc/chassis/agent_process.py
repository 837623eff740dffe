"""The life of an agent process: log, start, wait for SIGINT/SIGTERM, stop cleanly.

    def main() -> None:
        run_agent("network-agent", AgentSettings(), build)   # build(settings) -> agent

An agent is anything with ``async start()`` and ``async stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import Protocol, TypeVar

from .logging import configure_logging
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class Agent(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=ServiceSettings)


def _detach_child_from_signals() -> None:
    """A forked child (pyroute2's namespace helpers are) inherits asyncio's signal wake-up
    fd: without this, the SIGTERM that stops such a helper would reach the agent's own loop
    and stop the agent."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_on(sig: signal.Signals, stopping: asyncio.Event) -> None:
    log.info("stopping on %s", sig.name)
    stopping.set()


async def serve_until_signalled(agent: Agent) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _stop_on, sig, stopping)
    await agent.start()
    try:
        await stopping.wait()
    finally:
        await agent.stop()


def run_agent(name: str, settings: S, build: Callable[[S], Agent]) -> None:
    """What an agent's console script runs."""
    configure_logging(name, settings.log_level, settings.log_json, host=settings.host)
    os.register_at_fork(after_in_child=_detach_child_from_signals)
    asyncio.run(serve_until_signalled(build(settings)))
