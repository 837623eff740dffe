"""Facades for the services compute calls over RPC; nothing else knows their topics.

API version history (what each side may rely on):
    1.0  ping

    network = NetworkClient(runtime.rpc)
    await network.ping()   # {"service": "network", "host": ..., ...}
"""

from __future__ import annotations

from typing import Any, ClassVar

from common_rpc import RpcClient


class ServiceClient:
    """Calls to one service's shared topic, any replica, with a default deadline."""

    topic: ClassVar[str]

    def __init__(self, rpc: RpcClient, *, timeout: float = 10.0) -> None:
        self.rpc = rpc
        self.timeout = timeout

    async def ping(self) -> dict[str, Any]:
        return await self.rpc.call(self.topic, "ping", timeout=self.timeout)


class NetworkClient(ServiceClient):
    topic = "network"


class VolumeClient(ServiceClient):
    topic = "volume"
