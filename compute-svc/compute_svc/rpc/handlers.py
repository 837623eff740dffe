"""RPC methods on the ``compute`` topic (any compute-api replica answers): ``contracts.API``.

The compute-agent of each host calls ``host_state`` (its reconcile) and casts
``power_state_changed``; operators call ``check_peers`` and ``audit``. The handlers only
check who calls and hand over to ``domain``.
"""

from __future__ import annotations

from common_rpc import RpcError, RpcRouter
from common_rpc.audit import AuditReport, require_admin
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.context import current_context
from common_rpc.errors import Forbidden
from common_rpc.methods import Empty

from ..contracts import (
    AUDIT,
    CHECK_PEERS,
    HOST_STATE,
    POWER_STATE_CHANGED,
    HostState,
    Peers,
    PeerStatus,
    PowerStateChanged,
    ServerStatus,
)
from ..domain import audit as audit_domain
from ..domain import desired, power
from ..wiring import Deps

rpc = RpcRouter()


def _agents_only() -> None:
    if not current_context().is_admin:
        raise Forbidden("this method is for the compute service's own agents")


@rpc.implement(CHECK_PEERS)
async def check_peers(deps: Deps, request: Empty) -> Peers:
    """Whether the services compute depends on answer, and which replica did."""
    found: dict[str, PeerStatus] = {}
    for topic in (deps.network.topic, deps.volume.topic):
        try:
            # The chassis' ping answers a free-form description of the process.
            pong = await deps.runtime.rpc.call(topic, "ping", timeout=deps.settings.rpc_timeout_s)
            found[topic] = PeerStatus.model_validate({**pong, "ok": True})
        except RpcError as exc:
            found[topic] = PeerStatus(ok=False, error=exc.code, message=exc.message)
    return Peers(network=found["network"], volume=found["volume"])


@rpc.implement(AUDIT)
async def audit(deps: Deps, request: Empty) -> AuditReport:
    """``stackling audit compute``: host and database compared (operators only)."""
    require_admin()
    return await audit_domain.audit(deps)


@rpc.implement(HOST_STATE)
async def host_state(deps: Deps, request: HostStateRequest) -> HostState:
    _agents_only()
    return await desired.host_state(deps, request.host)


@rpc.implement(POWER_STATE_CHANGED)
async def power_state_changed(deps: Deps, request: PowerStateChanged) -> ServerStatus:
    _agents_only()
    status = await power.observed(deps, request.server_id, request.power_state)
    return ServerStatus(server_id=request.server_id, status=status)
