"""How network-api calls the network-agent of one host (``network.<host>``), typed.

    agent = AgentApi(runtime.rpc, "cn1", timeout=5)        # or deps.agent("cn1")
    wired = await agent.wire_port(state)                    # desired.port_state(...)
    wired.observed_generation, wired.bridge, wired.device
    await agent.cast_sync_router(router_state, router_state.generation)

Every call has a deadline; an agent that is down or slow raises ``RpcTimeout`` (the
command may or may not have run: the next command or reconcile settles it, because
commands carry desired state and a generation, never a delta). The ``cast_`` methods do
not wait: a lost one is repaired by the agent's periodic reconcile.
"""

from __future__ import annotations

from common_rpc.chassis.agent import agent_topic
from common_rpc.methods import Empty
from common_rpc.rpc import RpcClient

from .contracts import (
    DELETE_NETWORK,
    INVENTORY,
    SYNC_MEMBERS,
    SYNC_NETWORK,
    SYNC_ROUTER,
    UNWIRE_PORT,
    WIRE_PORT,
    Inventory,
    NetworkRef,
    NetworkState,
    NetworkSynced,
    PortRef,
    PortState,
    PortUnwired,
    PortWired,
    RouterState,
    RouterSynced,
    SyncMembers,
    SyncNetwork,
    SyncRouter,
)

DEFAULT_TIMEOUT = 5.0


class AgentApi:
    def __init__(self, rpc: RpcClient, host: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.rpc = rpc
        self.host = host
        self.topic = agent_topic("network", host)
        self.timeout = timeout

    async def sync_network(self, network: NetworkState, generation: int) -> NetworkSynced:
        request = SyncNetwork(network=network, generation=generation)
        return await self.rpc.invoke(self.topic, SYNC_NETWORK, request, timeout=self.timeout)

    async def wire_port(self, state: PortState) -> PortWired:
        return await self.rpc.invoke(self.topic, WIRE_PORT, state, timeout=self.timeout)

    async def unwire_port(self, port_id: str) -> PortUnwired:
        return await self.rpc.invoke(
            self.topic, UNWIRE_PORT, PortRef(port_id=port_id), timeout=self.timeout
        )

    async def sync_router(self, router: RouterState, generation: int) -> RouterSynced:
        request = SyncRouter(router=router, generation=generation)
        return await self.rpc.invoke(self.topic, SYNC_ROUTER, request, timeout=self.timeout)

    async def inventory(self) -> Inventory:
        """What the host has of ours (bridges, DHCP, chains): the audit's other side."""
        return await self.rpc.invoke(self.topic, INVENTORY, Empty(), timeout=self.timeout)

    async def cast_sync_network(self, network: NetworkState, generation: int) -> None:
        request = SyncNetwork(network=network, generation=generation)
        await self.rpc.send(self.topic, SYNC_NETWORK, request, timeout=self.timeout)

    async def cast_wire_port(self, state: PortState) -> None:
        await self.rpc.send(self.topic, WIRE_PORT, state, timeout=self.timeout)

    async def cast_unwire_port(self, port_id: str) -> None:
        await self.rpc.send(self.topic, UNWIRE_PORT, PortRef(port_id=port_id), timeout=self.timeout)

    async def cast_sync_router(self, router: RouterState, generation: int) -> None:
        request = SyncRouter(router=router, generation=generation)
        await self.rpc.send(self.topic, SYNC_ROUTER, request, timeout=self.timeout)

    async def cast_sync_members(self, remote_groups: dict[str, list[str]]) -> None:
        request = SyncMembers(remote_groups=remote_groups)
        await self.rpc.send(self.topic, SYNC_MEMBERS, request, timeout=self.timeout)

    async def cast_delete_network(self, network_id: str) -> None:
        request = NetworkRef(network_id=network_id)
        await self.rpc.send(self.topic, DELETE_NETWORK, request, timeout=self.timeout)
