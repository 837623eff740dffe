"""Waiting for the network service to report a port's status.

The boot flow binds a port and then waits for ``network.port.update.end`` saying it is
``ACTIVE`` before it calls the server active. Register the wait *before* asking for the
binding, so an event that arrives first is not missed.

    waiter = port_events.expect(port_id, "ACTIVE")
    await network.bind_port(...)
    payload = await port_events.wait(waiter, timeout=60)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from common_rpc import Event, RpcTimeout
from common_rpc.contracts.payloads import PortPayload

PATTERNS = ("network.port.update.end",)


@dataclass(eq=False)
class PortWaiter:
    port_id: str
    status: str
    future: asyncio.Future[PortPayload] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PortEvents:
    """In-process waiters fed by compute's subscription to port events."""

    def __init__(self) -> None:
        self._waiters: dict[str, list[PortWaiter]] = {}

    def expect(self, port_id: str, status: str) -> PortWaiter:
        waiter = PortWaiter(port_id, status)
        self._waiters.setdefault(port_id, []).append(waiter)
        return waiter

    async def wait(self, waiter: PortWaiter, *, timeout: float) -> PortPayload:
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            raise RpcTimeout(
                f"port {waiter.port_id} did not become {waiter.status} within {timeout:g}s"
            ) from None
        finally:
            self._forget(waiter)

    async def on_event(self, event: Event) -> None:
        payload = PortPayload.model_validate(event.payload)
        for waiter in list(self._waiters.get(payload.id, ())):
            if payload.status == waiter.status and not waiter.future.done():
                waiter.future.set_result(payload)

    def _forget(self, waiter: PortWaiter) -> None:
        waiters = self._waiters.get(waiter.port_id, [])
        if waiter in waiters:
            waiters.remove(waiter)
        if not waiters:
            self._waiters.pop(waiter.port_id, None)
