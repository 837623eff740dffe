"""RPC methods on ``volume.<host>``, served by that host's volume-agent.

The API calls them through ``volume_svc.rpc.agent_api.AgentApi``; ``deps`` is the
host's ``VolumeHost``. Driver failures cross as ``InternalError`` with a generic message
(details stay in the agent's log) and the API moves the row to its error status.
"""

from __future__ import annotations

from typing import Any

from common_rpc import RpcRouter

from .host import VolumeHost

rpc = RpcRouter()


@rpc.handler()
async def create_volume(
    deps: VolumeHost,
    volume_id: str,
    size_gb: int,
    snapshot_id: str | None = None,
    source_volume_id: str | None = None,
) -> dict[str, Any]:
    return await deps.create_volume(volume_id, size_gb, snapshot_id, source_volume_id)


@rpc.handler()
async def delete_volume(deps: VolumeHost, volume_id: str) -> dict[str, Any]:
    return await deps.delete_volume(volume_id)


@rpc.handler()
async def extend_volume(deps: VolumeHost, volume_id: str, size_gb: int) -> dict[str, Any]:
    return await deps.extend_volume(volume_id, size_gb)


@rpc.handler()
async def create_snapshot(deps: VolumeHost, snapshot_id: str, volume_id: str) -> dict[str, Any]:
    return await deps.create_snapshot(snapshot_id, volume_id)


@rpc.handler()
async def delete_snapshot(deps: VolumeHost, snapshot_id: str) -> dict[str, Any]:
    return await deps.delete_snapshot(snapshot_id)


@rpc.handler()
async def export_volume(
    deps: VolumeHost, volume_id: str, initiator: str, chap_secret: str
) -> dict[str, Any]:
    return await deps.export_volume(volume_id, initiator, chap_secret)


@rpc.handler()
async def unexport_volume(deps: VolumeHost, volume_id: str) -> dict[str, Any]:
    return await deps.unexport_volume(volume_id)


@rpc.handler()
async def inventory(deps: VolumeHost) -> dict[str, Any]:
    return await deps.inventory()
