"""Reconciler: on start and every ``interval`` seconds, make the host match the DB.

It asks the network API for everything bound to this host (``host_state`` on the
``network`` topic, as the service) and hands it to ``HostAgent.converge``: expected
networks and ports are ensured, owned objects the DB no longer has are removed. A
failed round is logged and retried at the next tick; commands keep working meanwhile.

    reconciler = Reconciler(runtime.rpc, host_agent, "cn1", interval=60)
    await reconciler.run_once()     # {"networks": 1, "ports": 2, "removed": 0}
    reconciler.start()              # the periodic loop; await reconciler.stop()
"""

from __future__ import annotations

import logging
from typing import Any

from common_rpc.chassis.agent import HostStateRequest
from common_rpc.chassis.periodic import Periodic
from common_rpc.context import RequestContext, use_context
from common_rpc.rpc import RpcClient

from ..contracts import HOST_STATE
from .host import HostAgent

log = logging.getLogger(__name__)

SERVICE = RequestContext(user_id="network-agent", roles=frozenset({"admin", "service"}))


class Reconciler:
    def __init__(
        self,
        client: RpcClient,
        host_agent: HostAgent,
        host: str,
        *,
        interval: float = 60.0,
        timeout: float = 10.0,
        api_topic: str = "network",
    ) -> None:
        self.client = client
        self.host_agent = host_agent
        self.host = host
        self.timeout = timeout
        self.api_topic = api_topic
        self.rounds = 0
        self._job = Periodic(f"reconcile-{host}", self.run_once, interval=interval)

    async def run_once(self) -> dict[str, Any]:
        with use_context(SERVICE):
            state = await self.client.invoke(
                self.api_topic, HOST_STATE, HostStateRequest(host=self.host), timeout=self.timeout
            )
        result = await self.host_agent.converge(state)
        self.rounds += 1
        log.info("reconciled host %s: %s", self.host, result)
        return result

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
