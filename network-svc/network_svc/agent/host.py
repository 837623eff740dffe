"""HostAgent: applies desired state to this host, newest generation wins.

Each object (``network:<id>``, ``port:<id>``) keeps the last generation applied, in
memory. A command with an older or equal generation changes nothing and answers the
generation the host already has; the periodic reconcile re-applies equal generations
too (``force=True``), which repairs drift. Driver calls block, so they run in a thread,
one at a time.

    host = HostAgent(load("fake"), Names())       # the drivers' names
    await host.wire_port(port_state)        # PortWired(observed_generation=4, ...)
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from network_svc.contracts import (
    HostState,
    MembersSynced,
    NetworkDeleted,
    NetworkState,
    NetworkSynced,
    PortState,
    PortUnwired,
    PortWired,
    RouterState,
    RouterSynced,
)
from network_svc.drivers import Drivers
from network_svc.drivers.base import DhcpHost, NetworkSpec, SetKey, member_sets
from network_svc.drivers.names import Names

from . import wire

T = TypeVar("T")
DELETED = sys.maxsize  # the generation of an object deleted in the DB: nothing is newer
UNWIRED = 0.5  # above an unwired port's last generation, below its next one


def _hex(ident: str) -> str:
    return re.sub(r"[^0-9a-f]", "", ident.lower())


class HostAgent:
    def __init__(
        self,
        drivers: Drivers,
        names: Names,
        *,
        device_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.drivers = drivers
        self.names = names
        self.router = drivers.router
        self.generations: dict[str, float] = {}
        self.networks: dict[str, tuple[NetworkSpec, tuple[DhcpHost, ...]]] = {}
        # The member sets each wired port's rules match on: a set goes once no port needs it.
        self.port_sets: dict[str, frozenset[SetKey]] = {}
        self._device_exists = device_exists or drivers.l2.device_exists
        self._lock = asyncio.Lock()

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    def _newer(self, key: str, generation: float, force: bool) -> bool:
        have = self.generations.get(key, -1)
        return generation > have or (force and generation == have)

    async def sync_network(
        self, network: NetworkState, generation: int, *, force: bool = False
    ) -> NetworkSynced:
        async with self._lock:
            return await self._sync_network(network, generation, force)

    async def _sync_network(
        self, network: NetworkState, generation: int, force: bool
    ) -> NetworkSynced:
        spec, hosts = wire.network_spec(network)
        key = f"network:{spec.network_id}"
        applied = self._newer(key, generation, force)
        if applied:
            await self._run(self.drivers.l2.ensure_network, spec)
            if network.dhcp:
                await self._run(self.drivers.dhcp.ensure, spec, hosts)
            else:  # another host (a network node) serves it
                await self._run(self.drivers.dhcp.delete, spec.network_id)
            self.networks[spec.network_id] = (spec, hosts)
            self.generations[key] = generation
        return NetworkSynced(
            network_id=spec.network_id,
            observed_generation=int(self.generations.get(key, 0)),
            applied=applied,
            bridge=self.names.bridge(spec.network_id),
            mtu=spec.mtu,
        )

    async def wire_port(self, state: PortState, *, force: bool = False) -> PortWired:
        """Network first, then member sets and rules, then the device joins the bridge.

        The device (the hypervisor's tap) may not exist yet: the rules match it by name
        once it appears, and the hypervisor adds it to the returned bridge.
        ``state.remote_groups``: the member addresses of each group the rules name.
        """
        generation = state.generation
        async with self._lock:
            net = await self._sync_network(state.network, state.network.generation, force)
            device = self.names.port_device(state.port.port_id)
            spec = wire.port_spec(state.port, device)
            key = f"port:{spec.port_id}"
            applied = self._newer(key, generation, force)
            if applied:
                sg_rules = wire.rules_of(state.rules)
                keys = member_sets(sg_rules, spec.port_security)
                firewall = self.drivers.firewall
                # sets before the rules that name them; unused ones only after those rules
                members = wire.set_members(keys, state.remote_groups)
                await self._run(firewall.ensure_sets, members)
                await self._run(firewall.ensure_port, spec, sg_rules)
                old, self.port_sets[spec.port_id] = self.port_sets.get(spec.port_id), keys
                if old and old - keys:
                    await self._remove_unused_sets()
                if await self._run(self._device_exists, device):
                    await self._run(self.drivers.l2.plug_port, spec)
                self.generations[key] = generation
            return PortWired(
                port_id=spec.port_id,
                observed_generation=int(self.generations.get(key, 0)),
                applied=applied,
                bridge=net.bridge,
                mtu=net.mtu,
                mac=spec.mac,
                device=device,
            )

    async def unwire_port(self, port_id: str) -> PortUnwired:
        """Remove the port's rules and take its device off the bridge (idempotent).

        It leaves a tombstone half a step above the generation last wired: a late wire of
        that state (a reconcile that read the host's state before the port went, say) is
        older and changes nothing, while a new bind, which moves the port's generation on
        by a whole step, still applies.
        """
        key = f"port:{port_id}"
        async with self._lock:
            await self._remove_port(port_id)
            self.generations[key] = int(self.generations.get(key, -1)) + UNWIRED
        return PortUnwired(port_id=port_id, unwired=True)

    async def delete_network(self, network_id: str) -> NetworkDeleted:
        """The network is gone from the DB: its DHCP server, then bridge and uplink (idempotent).

        Its ports went before it (the API refuses to delete a network with ports).
        """
        async with self._lock:
            await self._run(self.drivers.dhcp.delete, network_id)
            await self._run(self.drivers.l2.delete_network, network_id)
            self.networks.pop(network_id, None)
            # A tombstone: a sync of the network sent before its delete but handled after it
            # (casts run side by side) is older than this and changes nothing.
            self.generations[f"network:{network_id}"] = DELETED
        return NetworkDeleted(network_id=network_id, deleted=True)

    async def _remove_port(self, port_id: str) -> None:
        await self._run(self.drivers.firewall.remove_port, port_id)
        await self._run(self.drivers.l2.unplug_port, port_id)
        self.port_sets.pop(port_id, None)
        await self._remove_unused_sets()

    async def _remove_unused_sets(self) -> int:
        """Sets no wired port needs; one still named by a rule stays until a later call."""
        keep = frozenset().union(*self.port_sets.values())
        return await self._run(self.drivers.firewall.remove_sets, keep)

    async def sync_members(self, remote_groups: dict[str, list[str]]) -> MembersSynced:
        """New member addresses of groups: only the sets this host already needs change."""
        async with self._lock:
            have = frozenset().union(*self.port_sets.values())
            keys = frozenset(key for key in have if key[0] in remote_groups)
            await self._run(
                self.drivers.firewall.ensure_sets, wire.set_members(keys, remote_groups)
            )
        return MembersSynced(sets=len(keys))

    async def converge(self, state: HostState, _since: float = 0.0) -> dict[str, int]:
        """Make the host match ``state`` (from ``host_state``): ensure it, drop the rest.

        What it did, for the reconcile's log line (free-form: counts by kind).
        """
        for network in state.networks:
            await self.sync_network(network, network.generation, force=True)
        for item in state.ports:
            await self.wire_port(item, force=True)
        for router in state.routers or ():
            await self.sync_router(router, router.generation, force=True)
        networks = {n.network_id for n in state.networks}
        ports = {item.port.port_id for item in state.ports}
        async with self._lock:
            removed = await self._remove_orphans(networks, ports)
            if state.routers is not None:
                wanted = {r.router_id for r in state.routers if r.wanted}
                removed += await self._remove_stale_routers(wanted)
        result = {"networks": len(networks), "ports": len(ports), "removed": removed}
        if state.routers is not None:
            result["routers"] = len(state.routers)
        return result

    async def _remove_orphans(self, networks: set[str], ports: set[str]) -> int:
        removed = 0
        # Chains carry the first hex digits of the port id: enough to name all its objects.
        known = {_hex(p)[:11] for p in ports}
        head = self.names.chain_prefix()
        stale_ports: set[str] = set()
        for chain in await self._run(self.drivers.firewall.list_owned):
            rest = chain[len(head) :] if chain.startswith(head) else ""
            if rest[:1] in ("a", "i", "o", "s") and not rest.startswith("fwd"):
                fragment = rest[1:]
                if fragment and fragment not in known:
                    stale_ports.add(fragment)
        for fragment in sorted(stale_ports):
            await self._remove_port(fragment)
            removed += 1
        bridge_head = self.names.prefix + "brq"
        known_nets = {self.names.bridge(n) for n in networks}
        dhcp_head = self.names.dhcp_namespace("")
        for namespace in await self._run(self.drivers.dhcp.list_owned):
            network_id = namespace[len(dhcp_head) :]
            if network_id not in networks:
                await self._run(self.drivers.dhcp.delete, network_id)
                removed += 1
        for name in await self._run(self.drivers.l2.list_owned):
            if name.startswith(bridge_head) and name not in known_nets:
                await self._run(self.drivers.l2.delete_network, name[len(bridge_head) :])
                removed += 1
        for network_id in set(self.networks) - networks:
            del self.networks[network_id]
        for port_id in set(self.port_sets) - ports:
            del self.port_sets[port_id]
        removed += await self._remove_unused_sets()
        # Generations stay: a late command for a removed object is still recognised as old.
        return removed

    async def sync_router(
        self, router: RouterState, generation: int, *, force: bool = False
    ) -> RouterSynced:
        """The router's networks first (its legs join their bridges), then its namespace."""
        async with self._lock:
            router_id = router.router_id
            key = f"router:{router_id}"
            applied = self._newer(key, generation, force)
            if applied:
                if router.wanted:
                    for network in router.networks:
                        await self._sync_network(network, network.generation, force)
                    await self._run(self.router.ensure, wire.router_spec(router))
                else:
                    await self._run(self.router.delete, router_id)
                self.generations[key] = generation
            return RouterSynced(
                router_id=router_id,
                observed_generation=int(self.generations.get(key, 0)),
                applied=applied,
                namespace=self.names.router_namespace(router_id),
            )

    async def _remove_stale_routers(self, wanted: set[str]) -> int:
        head = self.names.router_namespace("")
        removed = 0
        for namespace in await self._run(self.router.list_owned):
            router_id = namespace[len(head) :]
            if router_id not in wanted:
                await self._run(self.router.delete, router_id)
                removed += 1
        return removed
