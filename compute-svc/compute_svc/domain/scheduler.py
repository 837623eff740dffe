"""Placing a server: filter alive compute hosts on free vCPU, RAM and disk, then claim.

Which hosts may take it (its zone, its server group, a host an admin named or one it is
moving away from) is ``domain.placement``'s; here the hosts left are weighed by
``strategy``: ``spread`` tries the one with the most free RAM first (Nova's default
RAM weigher), ``pack`` the one with the least, so servers fill a host before the next.

A claim is a ``claims`` row plus a compare-and-swap on the host's ``host_usage`` row
(``UPDATE ... SET used = used + need WHERE used + need <= limit``), made in the
caller's transaction; so two boots racing for the last room never both get it, on
SQLite or PostgreSQL, and releasing is deleting the claim (once) in the same
transaction as the server's change.

The limit is Placement's capacity: what the host has times the allocation ratio of
each resource (settings, Nova's defaults: CPU 4.0, RAM 1.0, disk 1.0); one server is
never larger than the host itself (Placement's ``max_unit``).

    hosts = await alive_hosts(registry, Ratios.of(settings), zone="nova")
    host = await claim(session, server_id, need, hosts, "spread")   # None: no room
    await release(session, server_id)                      # idempotent
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from math import floor
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.agents import AgentRegistry, AgentView

from ..db.models import Claim, HostUsage
from .common import try_insert

if TYPE_CHECKING:
    from ..settings import ComputeSettings

BINARY = "compute-agent"
SPREAD, PACK = "spread", "pack"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


@dataclass(frozen=True)
class Ratios:
    """Nova's allocation ratios: how far the claims may overcommit each resource."""

    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0

    @classmethod
    def of(cls, settings: ComputeSettings) -> Ratios:
        return cls(
            settings.cpu_allocation_ratio,
            settings.ram_allocation_ratio,
            settings.disk_allocation_ratio,
        )


@dataclass(frozen=True)
class Need:
    vcpus: int
    ram_mb: int
    disk_gb: int


def _times(total: int, ratio: float) -> int:
    """``total * ratio`` rounded down, in decimal (``100 * 0.29`` is 29, not 28.99...)."""
    return floor(Decimal(total) * Decimal(str(ratio)))


@dataclass(frozen=True)
class Capacity:
    """What a host has (physical, as its agent reports and the hypervisor views show)."""

    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    ratios: Ratios = field(default_factory=Ratios)
    # The availability zone the host's agent reports (or the service's default).
    zone: str = "nova"

    @property
    def limit(self) -> Need:
        """What the claims on the host may add up to: Placement's capacity."""
        return Need(
            _times(self.vcpus, self.ratios.cpu),
            _times(self.ram_mb, self.ratios.ram),
            _times(self.disk_gb, self.ratios.disk),
        )


def zone_of(agent: AgentView, default: str = "nova") -> str:
    """The availability zone a compute host's agent reports, or ``default``."""
    zone = agent.capabilities.get("availability_zone")
    return zone if isinstance(zone, str) and zone else default


def capacity(agent: AgentView, ratios: Ratios | None = None, zone: str = "nova") -> Capacity | None:
    """What an agent reported its host offers; None if it reported nothing usable.
    ``zone``: the zone of a host that reports none."""
    caps: dict[str, Any] = agent.capabilities
    try:
        vcpus, ram_mb, disk_gb = int(caps["vcpus"]), int(caps["ram_mb"]), int(caps["disk_gb"])
    except (KeyError, TypeError, ValueError):
        return None
    return Capacity(agent.host, vcpus, ram_mb, disk_gb, ratios or Ratios(), zone_of(agent, zone))


async def alive_hosts(
    registry: AgentRegistry, ratios: Ratios, zone: str = "nova"
) -> list[Capacity]:
    """Hosts whose compute-agent is alive (a heartbeat within ``agent_down_after_s``) and
    enabled (an admin did not disable its service), with what they offer."""
    hosts = []
    for agent in await registry.list(binary=BINARY):
        cap = capacity(agent, ratios, zone) if agent.alive and agent.admin_state_up else None
        if cap is not None:
            hosts.append(cap)
    return hosts


async def usage(session: AsyncSession) -> dict[str, HostUsage]:
    return {u.host: u for u in await session.scalars(select(HostUsage))}


def _fits(cap: Capacity, used: HostUsage | None, need: Need) -> bool:
    if need.vcpus > cap.vcpus or need.ram_mb > cap.ram_mb or need.disk_gb > cap.disk_gb:
        return False  # larger than the host itself, whatever the ratios
    used_v, used_r, used_d = (used.vcpus, used.ram_mb, used.disk_gb) if used else (0, 0, 0)
    limit = cap.limit
    return (
        used_v + need.vcpus <= limit.vcpus
        and used_r + need.ram_mb <= limit.ram_mb
        and used_d + need.disk_gb <= limit.disk_gb
    )


async def claim(
    session: AsyncSession,
    server_id: str,
    need: Need,
    hosts: list[Capacity],
    strategy: str = SPREAD,
) -> str | None:
    """Claim ``need`` on the first host that fits, the most free RAM first (``spread``)
    or the least (``pack``), ties by name; None when none fits. ``server_id`` keys the
    claim: a server's id, or a migration's for the room it holds on its destination."""
    used = await usage(session)

    def free_ram(cap: Capacity) -> int:
        row = used.get(cap.host)
        return cap.limit.ram_mb - (row.ram_mb if row else 0)

    if strategy == PACK:
        ordered = sorted(hosts, key=lambda cap: (free_ram(cap), cap.host))
    else:
        ordered = sorted(hosts, key=lambda cap: (-free_ram(cap), cap.host))
    for cap in ordered:
        if not _fits(cap, used.get(cap.host), need):
            continue
        if cap.host not in used:
            await try_insert(session, HostUsage(host=cap.host, vcpus=0, ram_mb=0, disk_gb=0))
        limit = cap.limit
        result = await session.execute(
            update(HostUsage)
            .where(
                HostUsage.host == cap.host,
                HostUsage.vcpus + need.vcpus <= limit.vcpus,
                HostUsage.ram_mb + need.ram_mb <= limit.ram_mb,
                HostUsage.disk_gb + need.disk_gb <= limit.disk_gb,
            )
            .values(
                vcpus=HostUsage.vcpus + need.vcpus,
                ram_mb=HostUsage.ram_mb + need.ram_mb,
                disk_gb=HostUsage.disk_gb + need.disk_gb,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            session.add(
                Claim(
                    server_id=server_id,
                    host=cap.host,
                    vcpus=need.vcpus,
                    ram_mb=need.ram_mb,
                    disk_gb=need.disk_gb,
                )
            )
            await session.flush()
            return cap.host
    return None


async def release(session: AsyncSession, server_id: str) -> bool:
    """Give back what ``server_id`` holds; only the transaction that deletes the claim does."""
    held = await session.get(Claim, server_id)
    if held is None:
        return False
    result = await session.execute(
        delete(Claim)
        .where(Claim.server_id == server_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    await session.execute(
        update(HostUsage)
        .where(HostUsage.host == held.host)
        .values(
            vcpus=HostUsage.vcpus - held.vcpus,
            ram_mb=HostUsage.ram_mb - held.ram_mb,
            disk_gb=HostUsage.disk_gb - held.disk_gb,
        )
        .execution_options(synchronize_session=False)
    )
    session.expunge(held)
    return True


async def rekey(session: AsyncSession, old_key: str, new_key: str) -> bool:
    """The claim held under ``old_key`` (a migration's) becomes ``new_key``'s (its
    server's) on the same host, usage unchanged: a confirmed move's room stays taken,
    once. The caller released ``new_key``'s own claim first."""
    held = await session.get(Claim, old_key)
    if held is None:
        return False
    moved = Claim(
        server_id=new_key,
        host=held.host,
        vcpus=held.vcpus,
        ram_mb=held.ram_mb,
        disk_gb=held.disk_gb,
    )
    await session.delete(held)
    await session.flush()
    session.add(moved)
    await session.flush()
    return True
