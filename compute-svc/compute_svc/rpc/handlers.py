"""RPC methods on the ``compute`` topic (any compute-api replica answers)."""

from __future__ import annotations

from typing import Any

from common_rpc import RpcError, RpcRouter

from ..wiring import Deps

rpc = RpcRouter()


@rpc.handler()
async def check_peers(deps: Deps) -> dict[str, Any]:
    """Whether the services compute depends on answer, and which replica did."""
    results: dict[str, Any] = {}
    for client in (deps.network, deps.volume):
        try:
            results[client.topic] = {"ok": True, **await client.ping()}
        except RpcError as exc:
            results[client.topic] = {"ok": False, "error": exc.code, "message": exc.message}
    return results
