"""After a port goes, tell the hosts at once instead of waiting for their reconcile.

The port's own host unwires it (its firewall chains and bridge slot), every host with a
port on the network gets the network's state again (dnsmasq stops leasing the freed
address), and a router that lost a floating IP mapping gets its NAT again. These are
casts: a lost one is repaired by the agents' periodic reconcile, because they carry
desired state, never a delta.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from common_rpc.errors import RpcError

from ..agent import desired
from ..db.models import Network, Port
from .agent_api import AgentApi

log = logging.getLogger(__name__)


async def port_removed(
    runtime: Any, port: Port | None, changed: dict[str, tuple[str, int]] | None = None
) -> None:
    """``changed``: the routers whose NAT the delete changed (a floating IP it held)."""
    if port is None:
        return
    await routers_changed(runtime, changed or {})
    async with runtime.sessions() as session:  # read only: no write lock
        hosts = set(
            await session.scalars(
                select(Port.host_id).where(Port.network_id == port.network_id, Port.host_id != "")
            )
        )
        exists = await session.scalar(select(Network.id).where(Network.id == port.network_id))
        state = await desired.network_state(session, port.network_id) if exists else None
    try:
        if port.host_id:
            await AgentApi(runtime.rpc, port.host_id).cast_unwire_port(port.id)
        if state is not None:
            for host in sorted(hosts):
                await AgentApi(runtime.rpc, host).cast_sync_network(state, state["generation"])
    except RpcError as exc:
        log.warning("port %s removed; hosts not told (their reconcile will): %s", port.id, exc)


async def port_unbound(runtime: Any, port_id: str, old_host: str) -> None:
    try:
        await AgentApi(runtime.rpc, old_host).cast_unwire_port(port_id)
    except RpcError as exc:
        log.warning("port %s unbound; %s not told (its reconcile will): %s", port_id, old_host, exc)


async def routers_changed(runtime: Any, changed: dict[str, tuple[str, int]]) -> None:
    """Send each changed router's whole desired state (or its absence) to its host."""
    if not changed:
        return
    async with runtime.sessions() as session:  # read only: no write lock for a read
        states = {rid: await desired.router_state(session, rid) for rid in changed}
    for router_id, (host, generation) in changed.items():
        state = states[router_id] or {"router_id": router_id, "absent": True}
        try:
            await AgentApi(runtime.rpc, host).cast_sync_router(
                state, int(state.get("generation", generation))
            )
        except RpcError as exc:
            log.warning("router %s: sync to %s not sent: %s", router_id, host, exc)
