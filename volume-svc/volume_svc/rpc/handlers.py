"""RPC methods on the ``volume`` topic (``contracts.API``): the attach contract compute
calls (``common_rpc.contracts.volume``), ``host_state`` for this service's agents and
``audit`` for operators. Thin: each parses its typed request and calls ``domain``.

Each runs as the caller's context (``current_context()``): a project reaches only its own
volumes. Callers that pass ``op_id`` get each operation run once however often retried.
"""

from __future__ import annotations

from common_rpc import RpcRouter
from common_rpc.audit import AuditReport, require_admin
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.context import current_context
from common_rpc.contracts.volume import (
    ATTACH,
    BEGIN_DETACHING,
    DETACH,
    GET_VOLUME,
    INITIALIZE_CONNECTION,
    RESERVE,
    ROLL_DETACHING,
    TERMINATE_CONNECTION,
    UNRESERVE,
    AttachRequest,
    ConnectionInfo,
    ConnectionRequest,
    ConnectionTerminated,
    DetachRequest,
    VolumeInfo,
    VolumeRef,
)
from common_rpc.errors import Forbidden
from common_rpc.methods import Empty

from ..contracts import AUDIT, HOST_STATE, HostState
from ..domain import attach as flow
from ..domain import audit as auditing
from ..wiring import Deps

rpc = RpcRouter()


@rpc.implement(GET_VOLUME)
async def get_volume(deps: Deps, request: VolumeRef) -> VolumeInfo:
    return await flow.get_volume(deps, current_context(), request.volume_id)


@rpc.implement(RESERVE)
async def reserve(deps: Deps, request: VolumeRef) -> VolumeInfo:
    return await flow.reserve(deps, current_context(), request.volume_id)


@rpc.implement(INITIALIZE_CONNECTION)
async def initialize_connection(deps: Deps, request: ConnectionRequest) -> ConnectionInfo:
    return await flow.initialize_connection(
        deps, current_context(), request.volume_id, request.connector
    )


@rpc.implement(ATTACH)
async def attach(deps: Deps, request: AttachRequest) -> VolumeInfo:
    """``mountpoint`` is the guest device (``/dev/vdb``); ``device`` is accepted for it too."""
    where = request.mountpoint or request.device or ""
    return await flow.attach(
        deps, current_context(), request.volume_id, request.server_id, where, request.host
    )


@rpc.implement(BEGIN_DETACHING)
async def begin_detaching(deps: Deps, request: VolumeRef) -> VolumeInfo:
    return await flow.begin_detaching(deps, current_context(), request.volume_id)


@rpc.implement(ROLL_DETACHING)
async def roll_detaching(deps: Deps, request: VolumeRef) -> VolumeInfo:
    """A detach that failed: ``detaching`` back to ``in-use`` (any other status stays)."""
    return await flow.roll_back_detaching(deps, current_context(), request.volume_id)


@rpc.implement(TERMINATE_CONNECTION)
async def terminate_connection(deps: Deps, request: ConnectionRequest) -> ConnectionTerminated:
    return await flow.terminate_connection(
        deps, current_context(), request.volume_id, request.connector
    )


@rpc.implement(DETACH)
async def detach(deps: Deps, request: DetachRequest) -> VolumeInfo:
    return await flow.detach(deps, current_context(), request.volume_id, request.server_id)


@rpc.implement(UNRESERVE)
async def unreserve(deps: Deps, request: VolumeRef) -> VolumeInfo:
    return await flow.unreserve(deps, current_context(), request.volume_id)


@rpc.implement(HOST_STATE)
async def host_state(deps: Deps, request: HostStateRequest) -> HostState:
    """What the host's agent must export (volume-agent's reconcile); service identity only."""
    if not current_context().is_admin:
        raise Forbidden("host_state is for the volume service's own agents")
    return await flow.host_state(deps, request.host)


@rpc.implement(AUDIT)
async def audit(deps: Deps, request: Empty) -> AuditReport:
    """Orphan files and targets, missing exports, stuck states: ``stackling audit volume``."""
    require_admin()
    return await auditing.run(deps)
