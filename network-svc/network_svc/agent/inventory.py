"""What this host really has of ours (links, DHCP, chains, member sets, router namespaces), for the
service's audit to compare with its DB.

Names come back as the kernel has them (with this agent's prefix), so the service can
derive the names it expects from ids with the same ``Names``.
"""

from __future__ import annotations

import asyncio

from network_svc.contracts import DhcpServed, Inventory

from .host import HostAgent


async def inventory(host: HostAgent) -> Inventory:
    drivers, names = host.drivers, host.names
    links = await asyncio.to_thread(drivers.l2.list_owned)
    namespaces = await asyncio.to_thread(drivers.dhcp.list_owned)
    chains = await asyncio.to_thread(drivers.firewall.list_owned)
    sets = await asyncio.to_thread(drivers.firewall.list_sets)
    routers = await asyncio.to_thread(host.router.list_owned)
    entries = getattr(drivers.l2, "tunnel_entries", None)  # a driver before l2-population
    tunnels = await asyncio.to_thread(entries) if entries else None
    head = names.dhcp_namespace("")
    dhcp: dict[str, DhcpServed] = {}
    for namespace in sorted(namespaces):
        network_id = namespace[len(head) :]
        running, pairs = await asyncio.to_thread(drivers.dhcp.served, network_id)
        dhcp[network_id] = DhcpServed(running=running, hosts=sorted(pairs))
    return Inventory(
        prefix=names.prefix,
        links=sorted(links),
        dhcp=dhcp,
        chains=sorted(chains),
        sets=sorted(sets),
        routers=sorted(routers),
        tunnels={dev: sorted(found) for dev, found in sorted(tunnels.items())}
        if tunnels is not None
        else None,
    )
