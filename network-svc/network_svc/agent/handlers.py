"""RPC methods on ``network.<host>``, served by that host's network-agent.

The API calls them through ``network_svc.rpc.agent_api.AgentApi``; ``deps`` is the
host's ``HostAgent``. Payloads are the shapes of ``network_svc.agent.wire``.
"""

from __future__ import annotations

from typing import Any

from common_rpc import RpcRouter

from .inventory import inventory as host_inventory

rpc = RpcRouter()


@rpc.handler()
async def sync_network(deps: Any, network: dict[str, Any], generation: int) -> dict[str, Any]:
    """Bridge, uplink and DHCP (namespace, dnsmasq, its hosts) of one network."""
    return await deps.sync_network(network, generation)


@rpc.handler()
async def wire_port(
    deps: Any,
    network: dict[str, Any],
    port: dict[str, Any],
    rules: list[dict[str, Any]],
    generation: int,
    remote_groups: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The network, then the port's member sets and firewall, then its device on the bridge."""
    return await deps.wire_port(network, port, rules, generation, remote_groups)


@rpc.handler()
async def sync_members(deps: Any, remote_groups: dict[str, list[str]]) -> dict[str, Any]:
    """New member addresses of security groups, for the sets this host already has."""
    return await deps.sync_members(remote_groups)


@rpc.handler()
async def unwire_port(deps: Any, port_id: str) -> dict[str, Any]:
    return await deps.unwire_port(port_id)


@rpc.handler()
async def delete_network(deps: Any, network_id: str) -> dict[str, Any]:
    """A deleted network: its bridge, uplink and DHCP namespace go from this host."""
    return await deps.delete_network(network_id)


@rpc.handler()
async def inventory(deps: Any) -> dict[str, Any]:
    """Bridges, DHCP namespaces (with dnsmasq's state and hosts) and chains of this host."""
    return await host_inventory(deps)


@rpc.handler()
async def sync_router(deps: Any, router: dict[str, Any], generation: int) -> dict[str, Any]:
    """A router's namespace, legs and NAT; ``{"router_id", "absent": True}`` removes it."""
    return await deps.sync_router(router, generation)
