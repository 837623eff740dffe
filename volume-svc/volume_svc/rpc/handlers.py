"""RPC methods on the ``volume`` topic: the attach contract compute calls, and operators'.

    await rpc.call("volume", "reserve", volume_id=v, op_id=op)
    info = await rpc.call("volume", "initialize_connection", volume_id=v,
                          connector={"initiator": iqn, "host": "cn1", "ip": "10.0.0.5"})
    info["data"]["target_iqn"], info["data"]["auth_password"]   # for libvirt's <disk>
    await rpc.call("volume", "attach", volume_id=v, server_id=s, mountpoint="/dev/vdb",
                   host="cn1")                                    # -> "in-use"
    await rpc.call("volume", "begin_detaching", volume_id=v)
    await rpc.call("volume", "terminate_connection", volume_id=v, connector=connector)
    await rpc.call("volume", "detach", volume_id=v, server_id=s)  # -> "available"
    await rpc.call("volume", "unreserve", volume_id=v)            # undo a failed attach
    await rpc.call("volume", "roll_detaching", volume_id=v)       # undo a failed detach

Each runs as the caller's context (``current_context()``): a project reaches only its own
volumes. Callers that pass ``op_id`` get each operation run once however often retried.
"""

from __future__ import annotations

from typing import Any

from common_rpc import RpcRouter
from common_rpc.audit import require_admin
from common_rpc.context import current_context
from common_rpc.errors import Forbidden

from ..domain import attach as flow
from ..domain import audit as auditing
from ..domain import volumes
from ..domain.common import transaction
from ..wiring import Deps

rpc = RpcRouter()


@rpc.handler()
async def get_volume(deps: Deps, volume_id: str) -> dict[str, Any]:
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        return volumes.view(await volumes.get(session, ctx, volume_id), ctx)


@rpc.handler()
async def reserve(deps: Deps, volume_id: str) -> dict[str, Any]:
    return await flow.reserve(deps, current_context(), volume_id)


@rpc.handler()
async def initialize_connection(
    deps: Deps, volume_id: str, connector: dict[str, Any]
) -> dict[str, Any]:
    return await flow.initialize_connection(deps, current_context(), volume_id, connector)


@rpc.handler()
async def attach(
    deps: Deps,
    volume_id: str,
    server_id: str,
    host: str,
    mountpoint: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """``mountpoint`` is the guest device (``/dev/vdb``); ``device`` is accepted for it too."""
    where = mountpoint or device or ""
    return await flow.attach(deps, current_context(), volume_id, server_id, where, host)


@rpc.handler()
async def begin_detaching(deps: Deps, volume_id: str) -> dict[str, Any]:
    return await flow.begin_detaching(deps, current_context(), volume_id)


@rpc.handler()
async def roll_detaching(deps: Deps, volume_id: str) -> dict[str, Any]:
    """A detach that failed: ``detaching`` back to ``in-use`` (any other status stays)."""
    ctx = current_context()
    async with transaction(deps.sessions) as session:
        return volumes.view(await flow.roll_detaching(session, ctx, volume_id), ctx)


@rpc.handler()
async def terminate_connection(
    deps: Deps, volume_id: str, connector: dict[str, Any]
) -> dict[str, Any]:
    return await flow.terminate_connection(deps, current_context(), volume_id, connector)


@rpc.handler()
async def detach(deps: Deps, volume_id: str, server_id: str) -> dict[str, Any]:
    return await flow.detach(deps, current_context(), volume_id, server_id)


@rpc.handler()
async def unreserve(deps: Deps, volume_id: str) -> dict[str, Any]:
    return await flow.unreserve(deps, current_context(), volume_id)


@rpc.handler()
async def host_state(deps: Deps, host: str) -> dict[str, Any]:
    """What ``host``'s agent must export (volume-agent's reconcile); service identity only."""
    if not current_context().is_admin:
        raise Forbidden("host_state is for the volume service's own agents")
    return await flow.host_state(deps, host)


@rpc.handler()
async def audit(deps: Deps) -> dict[str, Any]:
    """Orphan files and targets, missing exports, stuck states: ``stackling audit volume``."""
    require_admin()
    return (await auditing.run(deps)).to_wire()
