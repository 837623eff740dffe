"""Reconciler: on start and every ``interval`` seconds, make the host match the service.

It asks the compute service which servers belong on this host (``host_servers`` on the
``compute`` topic, as the service), removes domains and disks with our prefix that are
not among them, plugs back the attached NICs (the list's ``nics``) a domain lacks, and
casts ``power_state_changed`` for each server whose domain is not in the power state
the service has. A failed round is logged and retried next tick.

    reconciler = Reconciler(runtime.rpc, compute_host, "cn1", interval=60)
    await reconciler.run_once()   # {"domains": 2, "removed": ["…"], "power_changes": [],
                                  #  "restored_nics": []}
"""

from __future__ import annotations

import logging
import time
from typing import Any

from common_rpc.chassis.periodic import Periodic
from common_rpc.context import RequestContext, use_context
from common_rpc.rpc import RpcClient

from .host import ComputeHost

log = logging.getLogger(__name__)

SERVICE = RequestContext(user_id="compute-agent", roles=frozenset({"admin", "service"}))


class Reconciler:
    def __init__(
        self,
        client: RpcClient,
        compute_host: ComputeHost,
        host: str,
        *,
        interval: float = 60.0,
        timeout: float = 10.0,
        api_topic: str = "compute",
    ) -> None:
        self.client = client
        self.compute_host = compute_host
        self.host = host
        self.timeout = timeout
        self.api_topic = api_topic
        self.rounds = 0
        self._job = Periodic(f"reconcile-{host}", self.run_once, interval=interval)

    async def run_once(self) -> dict[str, Any]:
        started = time.monotonic()
        with use_context(SERVICE):
            servers = await self.client.call(
                self.api_topic, "host_servers", host=self.host, timeout=self.timeout
            )
        result = await self.compute_host.converge(list(servers), since=started)
        with use_context(SERVICE):
            for server_id, power_state in result["power_changes"]:
                await self.client.cast(
                    self.api_topic,
                    "power_state_changed",
                    server_id=server_id,
                    power_state=power_state,
                )
        await self.compute_host.refresh_capacity()
        self.rounds += 1
        log.info("reconciled host %s: %s", self.host, result)
        return result

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
