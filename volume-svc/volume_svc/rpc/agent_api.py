"""AgentApi: how the volume API calls the volume-agent of one host (``volume.<host>``).

    agent = AgentApi(runtime.rpc, "st1", timeout=30)
    await agent.create_volume("v1", size_gb=1)                 # {"volume_id", "path", ...}
    info = await agent.export_volume("v1", initiator=iqn, chap_secret=secret)
    info["target_iqn"], info["target_portal"], info["target_lun"], info["auth_username"]

Every call has a deadline; a host that is down raises ``RpcTimeout``. Commands carry the
desired result (a size, an export), so repeating one is harmless.

API version history:
    1.0 - create_volume, delete_volume, extend_volume, create_snapshot, delete_snapshot,
          export_volume, unexport_volume, inventory
"""

from __future__ import annotations

from typing import Any

from common_rpc.rpc import RpcClient

VERSION = "1.0"


def topic(host: str) -> str:
    return f"volume.{host}"


class AgentApi:
    def __init__(
        self, client: RpcClient, host: str, *, timeout: float = 30.0, copy_timeout: float = 600.0
    ) -> None:
        self.client = client
        self.host = host
        self.timeout = timeout
        self.copy_timeout = copy_timeout

    async def _call(self, method: str, timeout: float | None = None, **args: Any) -> Any:
        return await self.client.call(
            topic(self.host), method, timeout=timeout or self.timeout, **args
        )

    async def create_volume(
        self,
        volume_id: str,
        size_gb: int,
        snapshot_id: str | None = None,
        source_volume_id: str | None = None,
    ) -> dict[str, Any]:
        copying = snapshot_id is not None or source_volume_id is not None
        return await self._call(
            "create_volume",
            self.copy_timeout if copying else None,
            volume_id=volume_id,
            size_gb=size_gb,
            snapshot_id=snapshot_id,
            source_volume_id=source_volume_id,
        )

    async def delete_volume(self, volume_id: str) -> dict[str, Any]:
        return await self._call("delete_volume", volume_id=volume_id)

    async def extend_volume(self, volume_id: str, size_gb: int) -> dict[str, Any]:
        return await self._call("extend_volume", volume_id=volume_id, size_gb=size_gb)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> dict[str, Any]:
        return await self._call(
            "create_snapshot", self.copy_timeout, snapshot_id=snapshot_id, volume_id=volume_id
        )

    async def delete_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        return await self._call("delete_snapshot", snapshot_id=snapshot_id)

    async def export_volume(
        self, volume_id: str, initiator: str, chap_secret: str
    ) -> dict[str, Any]:
        return await self._call(
            "export_volume", volume_id=volume_id, initiator=initiator, chap_secret=chap_secret
        )

    async def unexport_volume(self, volume_id: str) -> dict[str, Any]:
        return await self._call("unexport_volume", volume_id=volume_id)

    async def inventory(self) -> dict[str, Any]:
        return await self._call("inventory")
