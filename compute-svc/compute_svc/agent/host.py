"""ComputeHost: applies the ``compute.<host>`` commands to the driver, one server at a time.

Commands for one server run one after another (a lock per server); different servers
proceed in parallel, each driver call in a thread. ``spawn`` keeps the newest generation
seen per server; a destroyed server is remembered, so a late ``spawn`` for it changes
nothing (server ids are never reused). What comes in and goes out are the models of
``contracts`` (the driver gets its own specs, ``drivers.base``).

    host = ComputeHost(driver, "cn1")
    await host.spawn(server)        # Spawned(server_id, domain, power_state, observed_generation)
    await host.destroy(server_id)   # Destroyed(server_id, destroyed=True)
    await host.attach_interface(server_id, Nic(port_id=..., mac=..., bridge=..., mtu=1450))
    await host.detach_volume(server_id, volume_id, attempts=8, timeout=20.0)

A detach asks the guest to let the device go, and asks again while it holds it (a guest
still booting ignores the first request), up to ``attempts`` times of ``timeout`` seconds
each and never past ``until``; then the device goes back into the domain's definition
and the detach fails, so the device stays attached everywhere (Nova's libvirt driver).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..contracts import (
    Capacity,
    ConsoleOutput,
    DesiredServer,
    Destroyed,
    DomainPower,
    DomainState,
    InterfaceAttached,
    InterfaceDetached,
    Inventory,
    Nic,
    ServerState,
    Spawned,
    VolumeAttached,
    VolumeConnection,
    VolumeDetached,
)
from ..drivers.base import (
    DetachPending,
    DomainInfo,
    HostCapacity,
    IscsiConnection,
    NicSpec,
    PowerAction,
    ServerSpec,
    VirtDriver,
    VirtError,
    VolumeSpec,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
TOMBSTONES = 100_000


class ComputeHost:
    def __init__(
        self,
        driver: VirtDriver,
        host: str,
        *,
        image_cache_min_age: float = 3600.0,
        detach_attempts: int = 8,
    ) -> None:
        self.driver = driver
        self.host = host
        self.image_cache_min_age = image_cache_min_age
        # Unplug requests per detach when the caller names none (the per-request wait is
        # the driver's ``detach_timeout``).
        self.detach_attempts = detach_attempts
        self.generations: dict[str, int] = {}
        self.deleted: OrderedDict[str, None] = OrderedDict()
        # monotonic time of the last command per server: reconcile spares recent ones
        self.touched: dict[str, float] = {}
        self.capacity: HostCapacity | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    def _lock(self, server_id: str) -> asyncio.Lock:
        self.touched[server_id] = time.monotonic()
        return self._locks.setdefault(server_id, asyncio.Lock())

    def touched_since(self, server_id: str, since: float) -> bool:
        return self.touched.get(server_id, float("-inf")) >= since

    async def spawn(self, server: ServerState) -> Spawned:
        # The driver's spec from the checked model (base64 user data decoded there).
        spec = ServerSpec.from_wire(server.model_dump())
        async with self._lock(spec.server_id):
            observed = max(self.generations.get(spec.server_id, -1), spec.generation)
            if spec.server_id in self.deleted:
                return Spawned(
                    server_id=spec.server_id,
                    domain=self.driver.domain_name(spec.server_id),
                    power_state="nostate",
                    observed_generation=observed,
                    deleted=True,
                )
            info = await self._run(self.driver.spawn, spec)
            self.generations[spec.server_id] = observed
            return Spawned(**_domain(info).model_dump(), observed_generation=observed)

    async def destroy(self, server_id: str) -> Destroyed:
        async with self._lock(server_id):
            self._forget(server_id)
            await self._run(self.driver.destroy, server_id)
        self._locks.pop(server_id, None)
        return Destroyed(server_id=server_id)

    def _forget(self, server_id: str) -> None:
        self.deleted[server_id] = None
        while len(self.deleted) > TOMBSTONES:
            self.deleted.popitem(last=False)
        self.generations.pop(server_id, None)

    async def rebuild(self, server: ServerState) -> Spawned:
        """The server made again from its (new) image; not a delete: later spawns count."""
        spec = ServerSpec.from_wire(server.model_dump())
        async with self._lock(spec.server_id):
            observed = max(self.generations.get(spec.server_id, -1), spec.generation)
            info = await self._run(self.driver.rebuild, spec)
            self.generations[spec.server_id] = observed
            return Spawned(**_domain(info).model_dump(), observed_generation=observed)

    async def resize(self, server: ServerState, running: bool) -> DomainState:
        spec = ServerSpec.from_wire(server.model_dump())
        async with self._lock(spec.server_id):
            info = await self._run(self.driver.resize, spec, running)
            self.generations[spec.server_id] = spec.generation
            return _domain(info)

    async def finish_resize(self, server_id: str, revert: bool, running: bool) -> DomainState:
        async with self._lock(server_id):
            return _domain(await self._run(self.driver.finish_resize, server_id, revert, running))

    async def snapshot(self, server_id: str, target: str) -> DomainState:
        async with self._lock(server_id):
            return _domain(await self._run(self.driver.snapshot, server_id, Path(target)))

    async def shelve_offload(self, server_id: str) -> Destroyed:
        """As destroy, but no tombstone: the server is shelved, not deleted, and its
        unshelve spawns it again (here or on another host)."""
        async with self._lock(server_id):
            await self._run(self.driver.destroy, server_id)
            self.generations.pop(server_id, None)
        return Destroyed(server_id=server_id)

    async def power(self, server_id: str, action: PowerAction) -> DomainState:
        async with self._lock(server_id):
            return _domain(await self._run(self.driver.power, server_id, action))

    async def console_output(self, server_id: str, length: int | None) -> ConsoleOutput:
        return ConsoleOutput(output=await self._run(self.driver.console_output, server_id, length))

    async def attach_volume(
        self, server_id: str, volume_id: str, connection: VolumeConnection
    ) -> VolumeAttached:
        volume = VolumeSpec(volume_id, IscsiConnection.from_wire(connection.model_dump()))
        async with self._lock(server_id):
            device = await self._run(self.driver.attach_volume, server_id, volume)
        return VolumeAttached(server_id=server_id, volume_id=volume_id, device=device)

    async def detach_volume(
        self,
        server_id: str,
        volume_id: str,
        attempts: int | None = None,
        timeout: float | None = None,
        until: float | None = None,
    ) -> VolumeDetached:
        tries = await self._detach(
            server_id,
            lambda wait: self.driver.detach_volume(server_id, volume_id, wait),
            lambda: self.driver.keep_volume(server_id, volume_id),
            f"volume {volume_id}",
            Retries.of(self, attempts, timeout, until),
        )
        return VolumeDetached(server_id=server_id, volume_id=volume_id, attempts=tries)

    async def attach_interface(self, server_id: str, nic: Nic) -> InterfaceAttached:
        spec = _nic(nic)
        async with self._lock(server_id):
            added = await self._run(self.driver.attach_interface, server_id, spec)
        return InterfaceAttached(server_id=server_id, port_id=spec.port_id, attached=added)

    async def detach_interface(
        self,
        server_id: str,
        nic: Nic,
        attempts: int | None = None,
        timeout: float | None = None,
        until: float | None = None,
    ) -> InterfaceDetached:
        spec = _nic(nic)
        tries = await self._detach(
            server_id,
            lambda wait: self.driver.detach_interface(server_id, spec, wait),
            lambda: self.driver.keep_interface(server_id, spec),
            f"port {spec.port_id}",
            Retries.of(self, attempts, timeout, until),
        )
        return InterfaceDetached(server_id=server_id, port_id=spec.port_id, attempts=tries)

    async def _detach(
        self,
        server_id: str,
        attempt: Callable[[float], None],
        keep: Callable[[], None],
        what: str,
        retries: Retries,
    ) -> int:
        """Unplug requests until the guest lets go; how many it took. The server's lock is
        held per request, so other commands for it go on between them."""
        asked = 0
        while asked < retries.attempts:
            wait = retries.wait()
            if wait is None:
                break  # the caller's deadline: no time left for another request
            asked += 1
            async with self._lock(server_id):
                try:
                    await self._run(attempt, wait)
                    return asked
                except DetachPending:
                    log.info("%s of %s: request %d not answered yet", what, server_id, asked)
        async with self._lock(server_id):
            await self._run(keep)
        raise VirtError(
            f"Device detach failed for {what}: the guest still holds it "
            f"after {asked} unplug requests."
        )

    async def refresh_capacity(self) -> HostCapacity:
        self.capacity = await self._run(self.driver.capacity)
        return self.capacity

    # Free-form by design: the heartbeat's capabilities (see agent/main.py).
    def capabilities(self) -> dict[str, Any]:
        """What the heartbeat carries: the host's capacity as last measured, and the iSCSI
        initiator its guests log in with (compute puts it in every volume connector).
        Free-form by design: every agent's heartbeat has its own, shown to admins as is."""
        cap = self._capacity()
        out = cap.model_dump() if cap is not None else {}
        if self.driver.initiator:
            out["initiator"] = self.driver.initiator
        return out

    def _capacity(self) -> Capacity | None:
        cap = self.capacity
        if cap is None:
            return None
        return Capacity(vcpus=cap.vcpus, ram_mb=cap.ram_mb, disk_gb=cap.disk_gb)

    async def inventory(self) -> Inventory:
        """Every guest of ours with its power state, and the capacity measured now."""
        found = await self._run(self.driver.list_domains)
        await self.refresh_capacity()
        return Inventory(
            host=self.host,
            domains=[DomainPower(server_id=d.server_id, power_state=d.power_state) for d in found],
            capacity=self._capacity(),
        )

    async def converge(self, servers: list[DesiredServer], since: float) -> Converged:
        """Remove unknown domains and disks and unused cached images; list the power states
        that differ from the service's.

        ``since`` is when the service's list was asked for: a server commanded after that
        may be missing from the list and is left alone until the next round.
        """
        known = {s.server_id: s for s in servers}
        domains = await self._run(self.driver.list_domains)
        removed: list[str] = []
        for info in domains:
            if info.server_id not in known and not self.touched_since(info.server_id, since):
                await self.destroy(info.server_id)
                removed.append(info.server_id)
        have = {d.server_id for d in domains}
        for owner in await self._run(self.driver.list_disk_owners):
            if owner not in known and owner not in have and not self.touched_since(owner, since):
                await self.destroy(owner)
                removed.append(owner)
        # What each known server is here; "nostate" when it has no domain. A server with
        # no desired power state (still building) or commanded during the round is skipped.
        actual = {d.server_id: d.power_state for d in domains}
        changes: list[tuple[str, str]] = []
        for server_id, item in sorted(known.items()):
            wanted = item.power_state
            now = actual.get(server_id, "nostate")
            if wanted and now != wanted and not self.touched_since(server_id, since):
                changes.append((server_id, now))
        restored: list[tuple[str, str]] = []
        for server_id, item in sorted(known.items()):
            if server_id in actual and item.nics:
                restored += await self._restore_nics(server_id, item.nics, since)
        pruned = await self._run(self.driver.prune_image_cache, self.image_cache_min_age)
        return Converged(len(domains), removed, pruned, changes, restored)

    async def _restore_nics(
        self, server_id: str, nics: list[Nic], since: float
    ) -> list[tuple[str, str]]:
        """Plug the attached NICs a domain lacks (a definition rebuilt or edited by hand).

        Checked under the server's lock, without touching it: a detach commanded after
        the service's list was read has touched it, and its NIC is not plugged back.
        """
        out: list[tuple[str, str]] = []
        async with self._locks.setdefault(server_id, asyncio.Lock()):
            if self.touched_since(server_id, since):
                return out
            for nic in nics:
                spec = _nic(nic)
                if await self._run(self.driver.attach_interface, server_id, spec):
                    out.append((server_id, spec.port_id))
        return out


@dataclass(frozen=True)
class Retries:
    """How a detach asks the guest: ``attempts`` requests of ``timeout`` seconds each,
    none begun past ``until`` (wall-clock time, as RPC deadlines are)."""

    attempts: int
    timeout: float
    until: float | None = None

    @classmethod
    def of(
        cls, host: ComputeHost, attempts: int | None, timeout: float | None, until: float | None
    ) -> Retries:
        return cls(
            max(1, attempts or host.detach_attempts),
            timeout if timeout and timeout > 0 else host.driver.detach_timeout,
            until,
        )

    def wait(self) -> float | None:
        """The wait of the next request; None when the deadline leaves no second for it."""
        if self.until is None:
            return self.timeout
        left = self.until - time.time()
        return min(self.timeout, left) if left >= 1.0 else None


@dataclass(frozen=True)
class Converged:
    """What one reconcile round found and did on the host."""

    domains: int
    removed: list[str]
    pruned_images: list[str]
    # (server id, the power state its guest is in) where it differs from the service's
    power_changes: list[tuple[str, str]]
    # (server id, port id) of the NICs plugged back
    restored_nics: list[tuple[str, str]]


def _domain(info: DomainInfo) -> DomainState:
    return DomainState(server_id=info.server_id, domain=info.domain, power_state=info.power_state)


def _nic(nic: Nic) -> NicSpec:
    return NicSpec.from_wire(nic.model_dump())
