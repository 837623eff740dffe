"""What a transaction changed that the hosts must hear about once it committed.

A change the data plane sees moves a generation (a network's, a port's or a router's),
so a host applies the new state and ignores any older command still in flight, and is
noted in ``session.info``, so the caller pushes the state after the commit
(``domain.push``):

    mark_router(session, router)                  # routers(session): {id: (host, generation)}
    await network_changed(session, network_id)    # networks(session): {network_id}
    ... commit ...
    await push.routers_changed(deps, routers)

Every resource module below its callers uses this, so none needs another's module for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Router

# The generation columns (migration network_0003) are read and bumped with plain SQL: the
# desired state of a host changes whenever they move, never through the ORM attributes.
GENERATIONS = {
    name: table(name, column("id"), column("generation")) for name in ("networks", "ports")
}

# session.info keys
ROUTERS_KEY = "routers_changed"  # router id -> (host, generation)
NETWORKS_KEY = "networks_changed"  # network ids whose DHCP state changed
REWIRED_KEY = "port_rewired"  # (port id, groups before and after) of a port to re-wire


async def bump_generation(session: AsyncSession, kind: str, row_id: str) -> int:
    """Increment and return the generation of one network or port row."""
    rows = GENERATIONS[kind]
    await session.execute(
        sa.update(rows).where(rows.c.id == row_id).values(generation=rows.c.generation + 1)
    )
    return await generation_of(session, kind, row_id)


async def generation_of(session: AsyncSession, kind: str, row_id: str) -> int:
    rows = GENERATIONS[kind]
    found = await session.scalar(select(rows.c.generation).where(rows.c.id == row_id))
    return int(found or 0)


def routers(session: AsyncSession) -> dict[str, tuple[str, int]]:
    """Routers this transaction changed: id -> (host, generation)."""
    return session.info.setdefault(ROUTERS_KEY, {})


def mark_router(session: AsyncSession, router: Router) -> None:
    router.generation += 1
    routers(session)[router.id] = (router.host, router.generation)


def networks(session: AsyncSession) -> set[str]:
    """Networks whose DHCP state this transaction changed (a subnet's options, a port a
    router or floating IP added or removed): each host serving one gets its state again
    once it committed, so dnsmasq leases exactly the network's addresses."""
    return session.info.setdefault(NETWORKS_KEY, set())


async def network_changed(session: AsyncSession, network_id: str) -> None:
    """A new generation of the network, noted for the caller to push."""
    await bump_generation(session, "networks", network_id)
    networks(session).add(network_id)
