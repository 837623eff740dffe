"""After a change the hosts must see, tell them at once instead of waiting for their reconcile.

The port's own host unwires it (its firewall chains and bridge slot), every host with a
port or a router leg on the network gets the network's state again (dnsmasq stops
leasing the freed address; a subnet's new gateway, DNS servers or routes), the hosts
whose rules match on the port's groups refill those member sets, and a router that lost
a floating IP mapping gets its NAT again. A deleted network leaves every host with a
live agent (the DB no longer says which had it). These are casts: a lost one is
repaired by the agents' periodic reconcile, because they carry desired state (or an
absence), never a delta.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import RpcError

from ..contracts import NetworkState, PortState, RouterState
from ..db.models import Network, Port, PortSecurityGroup
from ..wiring import Deps
from . import desired

log = logging.getLogger(__name__)

AGENT_BINARY = "network-agent"


async def port_removed(
    deps: Deps, port: Port | None, changed: dict[str, tuple[str, int]] | None = None
) -> None:
    """``changed``: the routers whose NAT the delete changed (a floating IP it held)."""
    if port is None:
        return
    await routers_changed(deps, changed or {})
    try:
        if port.host_id:
            await deps.agent(port.host_id).cast_unwire_port(port.id)
    except RpcError as exc:
        log.warning("port %s removed; %s not told (its reconcile will): %s",
                    port.id, port.host_id, exc)  # fmt: skip
    await networks_changed(deps, {port.network_id})
    # its addresses leave the member sets of its groups, on every host matching on them
    await members_changed(deps, [link.security_group_id for link in port.security_groups])


async def _network_hosts(session: AsyncSession, network_id: str) -> set[str]:
    """The hosts that serve the network: a bound port (a server's, or the DHCP port on
    its network node), or a router with a leg on it."""
    return set(await desired.port_hosts(session, network_id))


async def networks_changed(
    deps: Deps, network_ids: set[str] | list[str], *, skip: str | None = None
) -> None:
    """Networks whose state on the hosts changed (a subnet's gateway, DNS servers, host
    routes or DHCP, a port that came, moved or went): each host serving one gets its whole
    state again, as that host serves it (its tunnel peers). ``skip``: a host already told."""
    states: list[tuple[str, NetworkState]] = []
    async with deps.sessions() as session:  # read only: no write lock
        for network_id in sorted(set(network_ids)):
            if await session.scalar(select(Network.id).where(Network.id == network_id)) is None:
                continue  # deleted meanwhile: network_removed tells the hosts
            for host in sorted(await _network_hosts(session, network_id) - {skip}):
                states.append((host, await desired.network_state(session, network_id, host)))
    for host, state in states:
        try:
            await deps.agent(host).cast_sync_network(state, state.generation)
        except RpcError as exc:
            log.warning("network %s changed; %s not told (its reconcile will): %s",
                        state.network_id, host, exc)  # fmt: skip


async def port_unbound(deps: Deps, port_id: str, old_host: str) -> None:
    try:
        await deps.agent(old_host).cast_unwire_port(port_id)
    except RpcError as exc:
        log.warning("port %s unbound; %s not told (its reconcile will): %s", port_id, old_host, exc)


async def routers_changed(deps: Deps, changed: dict[str, tuple[str, int]]) -> None:
    """Send each changed router's whole desired state (or its absence) to its host."""
    if not changed:
        return
    async with deps.sessions() as session:  # read only: no write lock for a read
        states = {rid: await desired.router_state(session, rid) for rid in changed}
    for router_id, (host, generation) in changed.items():
        state = states[router_id]
        if state is None:  # gone: the host removes its namespace
            state = RouterState(router_id=router_id, generation=generation, absent=True)
        try:
            await deps.agent(host).cast_sync_router(state, state.generation)
        except RpcError as exc:
            log.warning("router %s: sync to %s not sent: %s", router_id, host, exc)


async def network_removed(deps: Deps, network: Network | None) -> None:
    """Every live agent drops the network's bridge, uplink and DHCP namespace now."""
    if network is None:
        return
    for host in sorted(await deps.agents.alive_hosts(AGENT_BINARY)):
        try:
            await deps.agent(host).cast_delete_network(network.id)
        except RpcError as exc:
            log.warning(
                "network %s deleted; %s not told (its reconcile will): %s", network.id, host, exc
            )


async def members_changed(deps: Deps, group_ids: list[str]) -> None:
    """Groups whose member ports or addresses changed (a port joined, left or was readdressed):
    each host whose bound ports match on one of them gets its new addresses for its sets."""
    if not group_ids:
        return
    async with deps.sessions() as session:  # read only
        hosts = await desired.member_set_hosts(session, group_ids)
        members = await desired.members(session, sorted({g for gs in hosts.values() for g in gs}))
    for host, groups in hosts.items():
        try:
            await deps.agent(host).cast_sync_members({g: members[g] for g in groups})
        except RpcError as exc:
            log.warning(
                "groups %s changed; %s not told (its reconcile will): %s", groups, host, exc
            )


async def ports_rewired(deps: Deps, port_ids: list[str]) -> None:
    """Ports whose own rules or groups changed: each one's host gets its whole state."""
    if not port_ids:
        return
    async with deps.sessions() as session:  # read only
        rows = await session.scalars(
            select(Port).where(Port.id.in_(port_ids), Port.host_id != "").order_by(Port.id)
        )
        states: list[tuple[str, PortState]] = [
            (port.host_id, await desired.port_state(session, port)) for port in rows
        ]
    for host, state in states:
        try:
            await deps.agent(host).cast_wire_port(state)
        except RpcError as exc:
            log.warning("port %s changed; %s not told (its reconcile will): %s",
                        state.port.port_id, host, exc)  # fmt: skip


async def rules_changed(deps: Deps, group_ids: set[str] | list[str]) -> None:
    """A group's rules changed: every bound port in it is re-wired on its host."""
    if not group_ids:
        return
    async with deps.sessions() as session:  # read only
        port_ids = list(
            await session.scalars(
                select(PortSecurityGroup.port_id).where(
                    PortSecurityGroup.security_group_id.in_(sorted(group_ids))
                )
            )
        )
    await ports_rewired(deps, sorted(set(port_ids)))
