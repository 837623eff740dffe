"""Reconciler: on start and every ``interval`` seconds, make this host's targets match the DB.

It asks the volume API for this host's expected exports (``host_state`` on the
``volume`` topic, as the service) and hands them to ``VolumeHost.converge``. tgtd keeps
no state across a restart, so this is also what brings the exports of in-use volumes
back. A failed round is logged and retried at the next tick.

    reconciler = Reconciler(runtime.rpc, host, "st1", interval=60)
    await reconciler.run_once()       # {"exports": 2, "removed": 0}
"""

from __future__ import annotations

import logging
import time

from common_rpc.chassis.agent import HostStateRequest
from common_rpc.chassis.periodic import Periodic
from common_rpc.context import RequestContext, use_context
from common_rpc.rpc import RpcClient

from ..contracts import HOST_STATE
from .host import VolumeHost

log = logging.getLogger(__name__)

SERVICE = RequestContext(user_id="volume-agent", roles=frozenset({"admin", "service"}))


class Reconciler:
    def __init__(
        self,
        client: RpcClient,
        host_agent: VolumeHost,
        host: str,
        *,
        interval: float = 60.0,
        timeout: float = 10.0,
        api_topic: str = "volume",
    ) -> None:
        self.client = client
        self.host_agent = host_agent
        self.host = host
        self.timeout = timeout
        self.api_topic = api_topic
        self.rounds = 0
        self._job = Periodic(f"reconcile-{host}", self.run_once, interval=interval)

    async def run_once(self) -> dict[str, int]:
        since = time.monotonic()
        with use_context(SERVICE):
            state = await self.client.invoke(
                self.api_topic, HOST_STATE, HostStateRequest(host=self.host), timeout=self.timeout
            )
        result = await self.host_agent.converge(state, since)
        self.rounds += 1
        log.info("reconciled volume host %s: %s", self.host, result)
        return result

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
