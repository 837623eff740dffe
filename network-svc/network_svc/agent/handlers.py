"""Commands on ``network.<host>`` (``contracts.AGENT``), served by that host's network-agent.

The API sends them through ``network_svc.clients.AgentApi``; ``deps`` is the host's
``HostAgent``. Thin: each hands its typed request to the host.
"""

from __future__ import annotations

from common_rpc import RpcRouter
from common_rpc.methods import Empty

from ..contracts import (
    DELETE_NETWORK,
    INVENTORY,
    SYNC_MEMBERS,
    SYNC_NETWORK,
    SYNC_ROUTER,
    UNWIRE_PORT,
    WIRE_PORT,
    Inventory,
    MembersSynced,
    NetworkDeleted,
    NetworkRef,
    NetworkSynced,
    PortRef,
    PortState,
    PortUnwired,
    PortWired,
    RouterSynced,
    SyncMembers,
    SyncNetwork,
    SyncRouter,
)
from .host import HostAgent
from .inventory import inventory as host_inventory

rpc = RpcRouter()


@rpc.implement(SYNC_NETWORK)
async def sync_network(host: HostAgent, request: SyncNetwork) -> NetworkSynced:
    return await host.sync_network(request.network, request.generation)


@rpc.implement(WIRE_PORT)
async def wire_port(host: HostAgent, request: PortState) -> PortWired:
    return await host.wire_port(request)


@rpc.implement(SYNC_MEMBERS)
async def sync_members(host: HostAgent, request: SyncMembers) -> MembersSynced:
    return await host.sync_members(request.remote_groups)


@rpc.implement(UNWIRE_PORT)
async def unwire_port(host: HostAgent, request: PortRef) -> PortUnwired:
    return await host.unwire_port(request.port_id)


@rpc.implement(DELETE_NETWORK)
async def delete_network(host: HostAgent, request: NetworkRef) -> NetworkDeleted:
    return await host.delete_network(request.network_id)


@rpc.implement(INVENTORY)
async def inventory(host: HostAgent, request: Empty) -> Inventory:
    return await host_inventory(host)


@rpc.implement(SYNC_ROUTER)
async def sync_router(host: HostAgent, request: SyncRouter) -> RouterSynced:
    return await host.sync_router(request.router, request.generation)
