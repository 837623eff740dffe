"""RPC methods on the ``network`` topic (``contracts.API``): the port calls other services
make (``common_rpc.contracts.network``), ``host_state`` for this service's agents and
``audit`` for operators. Thin: each takes its typed request, calls ``domain`` and
answers its typed reply.

    port = await NetworkApi(rpc).create_port(CreatePort(network_id=net, device_id=sid))
    bound = await NetworkApi(rpc).update_port_binding(port.id, "cn1")   # ACTIVE once wired

Each runs as the caller's context (``current_context()``), so a project still sees only
its own ports; events are written in the transactions that make the changes.
"""

from __future__ import annotations

from common_rpc import RpcRouter
from common_rpc.audit import AuditReport, require_admin
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.context import current_context
from common_rpc.contracts.network import (
    CREATE_PORT,
    DELETE_PORT,
    DELETE_PORTS,
    FIND_SECURITY_GROUPS,
    GET_NETWORK,
    GET_PORT,
    UPDATE_PORT,
    UPDATE_PORT_BINDING,
    UPDATE_PORT_SECURITY_GROUPS,
    BindPort,
    BoundPort,
    CreatePort,
    DevicePorts,
    DevicePortsDeleted,
    FindSecurityGroups,
    NetworkInfo,
    NetworkRef,
    Port,
    PortDeleted,
    PortGroupsChanged,
    PortRef,
    SecurityGroup,
    SecurityGroups,
    UpdatePort,
    UpdatePortSecurityGroups,
)
from common_rpc.errors import Forbidden
from common_rpc.methods import Empty

from ..contracts import AUDIT, HOST_STATE, HostState
from ..domain import audit as auditing
from ..domain import desired, port_flows, security_groups
from ..domain.common import transaction
from ..wiring import Deps

rpc = RpcRouter()


@rpc.implement(CREATE_PORT)
async def create_port(deps: Deps, request: CreatePort) -> Port:
    return await port_flows.create(deps, current_context(), request)


@rpc.implement(GET_NETWORK)
async def get_network(deps: Deps, request: NetworkRef) -> NetworkInfo:
    return await port_flows.network(deps, current_context(), request.network_id)


@rpc.implement(GET_PORT)
async def get_port(deps: Deps, request: PortRef) -> Port:
    return await port_flows.get(deps, current_context(), request.port_id)


@rpc.implement(UPDATE_PORT)
async def update_port(deps: Deps, request: UpdatePort) -> Port:
    return await port_flows.update(deps, current_context(), request)


@rpc.implement(UPDATE_PORT_SECURITY_GROUPS)
async def update_port_security_groups(
    deps: Deps, request: UpdatePortSecurityGroups
) -> PortGroupsChanged:
    return await port_flows.change_groups(
        deps, current_context(), request.port_id, request.add or [], request.remove or []
    )


@rpc.implement(FIND_SECURITY_GROUPS)
async def find_security_groups(deps: Deps, request: FindSecurityGroups) -> SecurityGroups:
    ctx = current_context()
    wanted = port_flows.group_ids(request.names_or_ids, "names_or_ids")
    # ``default`` is made on first use: only then does the lookup write.
    async with transaction(deps.sessions, write="default" in wanted) as session:
        found = await security_groups.find(session, ctx, wanted, missing_ok=request.missing_ok)
        views = [security_groups.view(group, ctx) for group in found]
    return SecurityGroups(security_groups=[SecurityGroup.model_validate(v) for v in views])


@rpc.implement(DELETE_PORT)
async def delete_port(deps: Deps, request: PortRef) -> PortDeleted:
    return await port_flows.delete(deps, current_context(), request.port_id)


@rpc.implement(DELETE_PORTS)
async def delete_ports(deps: Deps, request: DevicePorts) -> DevicePortsDeleted:
    return await port_flows.delete_device_ports(deps, current_context(), request.device_id)


@rpc.implement(UPDATE_PORT_BINDING)
async def update_port_binding(deps: Deps, request: BindPort) -> BoundPort:
    return await port_flows.bind(deps, current_context(), request.port_id, request.host)


@rpc.implement(HOST_STATE)
async def host_state(deps: Deps, request: HostStateRequest) -> HostState:
    """Everything bound to the host (network-agent's reconcile); service identity only."""
    if not current_context().is_admin:
        raise Forbidden("host_state is for the network service's own agents")
    async with transaction(deps.sessions) as session:
        return await desired.host_state(session, request.host)


@rpc.implement(AUDIT)
async def audit(deps: Deps, request: Empty) -> AuditReport:
    """``stackling audit network``: the DB against itself and every agent's host."""
    require_admin()
    return await auditing.audit(deps)
