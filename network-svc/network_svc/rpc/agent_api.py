"""AgentApi: how the network API calls the network-agent of one host (``network.<host>``).

    agent = AgentApi(runtime.rpc, "cn1", timeout=5)
    reply = await agent.wire_port(network, port, rules, generation=7)
    reply["observed_generation"], reply["bridge"], reply["mtu"], reply["mac"]

Every call has a deadline; an agent that is down or slow raises ``RpcTimeout`` (the
command may or may not have run: the next command or reconcile settles it, because
commands carry desired state and a generation, never a delta).

API version history:
    1.0 - sync_network(network, generation) -> {network_id, observed_generation,
          applied, bridge, mtu}
          wire_port(network, port, rules, generation) -> {port_id,
          observed_generation, applied, bridge, mtu, mac, device}
          unwire_port(port_id) -> {port_id, unwired}
    1.1 - sync_router(router, generation) -> {router_id, observed_generation, applied,
          namespace}; ``router`` is ``{"router_id", "absent": True}`` once deleted
    1.2 - inventory() -> {prefix, links, dhcp, chains, routers}: what the host has (audit)
    1.3 - wire_port(..., remote_groups={group_id: [address, ...]}): rules naming a
          ``remote_group_id`` match that group's member set; inventory() adds ``sets``;
          sync_members(remote_groups) -> {sets}: refill the sets the host already has
          delete_network(network_id) -> {network_id, deleted}: a deleted network leaves
"""

from __future__ import annotations

from typing import Any

from common_rpc.rpc import RpcClient

VERSION = "1.3"
DEFAULT_TIMEOUT = 5.0


def topic(host: str) -> str:
    return f"network.{host}"


class AgentApi:
    def __init__(self, client: RpcClient, host: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = client
        self.host = host
        self.timeout = timeout

    async def sync_network(self, network: dict[str, Any], generation: int) -> dict[str, Any]:
        return await self.client.call(
            topic(self.host),
            "sync_network",
            network=network,
            generation=generation,
            timeout=self.timeout,
        )

    async def wire_port(
        self,
        network: dict[str, Any],
        port: dict[str, Any],
        rules: list[dict[str, Any]],
        generation: int,
        remote_groups: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        return await self.client.call(
            topic(self.host),
            "wire_port",
            network=network,
            port=port,
            rules=rules,
            generation=generation,
            remote_groups=remote_groups or {},
            timeout=self.timeout,
        )

    async def unwire_port(self, port_id: str) -> dict[str, Any]:
        return await self.client.call(
            topic(self.host), "unwire_port", port_id=port_id, timeout=self.timeout
        )

    async def sync_router(self, router: dict[str, Any], generation: int) -> dict[str, Any]:
        return await self.client.call(
            topic(self.host),
            "sync_router",
            router=router,
            generation=generation,
            timeout=self.timeout,
        )

    async def cast_sync_router(self, router: dict[str, Any], generation: int) -> None:
        """Fire and forget: a lost command is repaired by the agent's periodic reconcile."""
        await self.client.cast(
            topic(self.host),
            "sync_router",
            router=router,
            generation=generation,
            timeout=self.timeout,
        )

    async def cast_sync_network(self, network: dict[str, Any], generation: int) -> None:
        """Fire and forget, like ``cast_sync_router``."""
        await self.client.cast(
            topic(self.host),
            "sync_network",
            network=network,
            generation=generation,
            timeout=self.timeout,
        )

    async def cast_sync_members(self, remote_groups: dict[str, list[str]]) -> None:
        """Fire and forget: the reconcile refills the sets if this is lost."""
        await self.client.cast(
            topic(self.host), "sync_members", remote_groups=remote_groups, timeout=self.timeout
        )

    async def cast_delete_network(self, network_id: str) -> None:
        """Fire and forget: the reconcile removes the network's objects if this is lost."""
        await self.client.cast(
            topic(self.host), "delete_network", network_id=network_id, timeout=self.timeout
        )

    async def cast_wire_port(self, state: dict[str, Any]) -> None:
        """Fire and forget a port's whole desired state (``desired.port_state``): the
        reconcile applies it if this is lost."""
        await self.client.cast(topic(self.host), "wire_port", timeout=self.timeout, **state)

    async def cast_unwire_port(self, port_id: str) -> None:
        """Fire and forget: reconcile removes the port's objects if this is lost."""
        await self.client.cast(
            topic(self.host), "unwire_port", port_id=port_id, timeout=self.timeout
        )

    async def inventory(self) -> dict[str, Any]:
        """What the host has of ours (bridges, DHCP, chains): the audit's other side."""
        return await self.client.call(topic(self.host), "inventory", timeout=self.timeout)
