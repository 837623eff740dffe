"""Floating IPs in servers' ``addresses``, kept from the network service's events.

Nova shows a server's floating IPs next to its fixed ones from its info cache, which
Neutron's notifications refresh; here the cache is the ``floating_ips`` table, which the
``network.floatingip.*.end`` events fill, so a list or a show reads one more table (one
query for the whole page) and asks the network service nothing.

Events of one floating IP may come out of order (replicas compete for them, a failed
handler's event is delivered again later): each carries the floating IP's
``revision_number``, and a row only takes an event newer than the one it holds (same
revision: the later event's timestamp). A delete is final; its row stays ``deleted`` for
``KEEP`` so a late update cannot bring it back, then housekeeping removes it.

    floating = await floating_ips.of_servers(session, rows)  # {port_id: [FloatingIp]}
    servers.addresses(server, floating)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Update, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc import Event
from common_rpc.contracts.payloads import FloatingIpPayload

from ..db.models import FloatingIp, Server
from ..wiring import Deps
from .common import transaction, try_insert

GROUP = "compute-floatingips"
PATTERNS = (
    "network.floatingip.create.end",
    "network.floatingip.update.end",
    "network.floatingip.delete.end",
)
KEEP = timedelta(days=7)  # as long as the event log remembers events already handled
PRUNE_INTERVAL_S = 3600.0

ByPort = dict[str, list[FloatingIp]]


def register(deps: Deps) -> None:
    """Subscribe this process to the floating IP events (its replicas share the queue)
    and prune deleted rows hourly."""
    runtime = deps.runtime

    async def on_event(event: Event) -> None:
        async with transaction(runtime.sessions) as session:
            await apply(session, event)

    async def prune() -> None:
        async with transaction(runtime.sessions) as session:
            await prune_deleted(session)

    runtime.subscribe(GROUP, PATTERNS, on_event)
    runtime.add_job("floating-ip-prune", prune, interval=PRUNE_INTERVAL_S)


async def apply(session: AsyncSession, event: Event) -> None:
    """The floating IP as ``event`` reports it, unless the row holds a newer report."""
    payload = FloatingIpPayload.model_validate(event.payload)
    deleted = event.event_type.endswith(".delete.end")
    at = event.timestamp.astimezone(UTC)
    revision = payload.revision_number or 0
    values = {
        "address": payload.floating_ip_address,
        "port_id": None if deleted else payload.port_id,
        "fixed_ip_address": None if deleted else payload.fixed_ip_address,
        "revision": revision,
        "changed_at": at,
        "deleted": deleted,
    }
    newer = or_(
        FloatingIp.revision < revision,
        and_(FloatingIp.revision == revision, FloatingIp.changed_at < at),
    )
    wanted = FloatingIp.deleted.is_(False) if deleted else and_(~FloatingIp.deleted, newer)
    query = (
        update(FloatingIp)
        .where(FloatingIp.id == payload.id, wanted)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if await _moved(session, query):
        return
    if await try_insert(session, FloatingIp(id=payload.id, **values)):
        return
    # The row is there: newer (nothing to do), or inserted meanwhile by another replica.
    await _moved(session, query)


async def _moved(session: AsyncSession, query: Update) -> bool:
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def prune_deleted(session: AsyncSession, keep: timedelta = KEEP) -> int:
    """Rows of floating IPs deleted longer ago than ``keep`` go."""
    cutoff = datetime.now(UTC) - keep
    result = await session.execute(
        delete(FloatingIp).where(FloatingIp.deleted, FloatingIp.changed_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _port_ids(rows: Iterable[Server]) -> list[str]:
    return sorted({n["port_id"] for r in rows for n in r.nics or [] if n.get("bound")})


async def of_servers(session: AsyncSession, rows: Iterable[Server]) -> ByPort:
    """The floating IPs on the servers' attached ports, by port (one query)."""
    ports = _port_ids(rows)
    out: ByPort = {}
    if not ports:
        return out
    query = (
        select(FloatingIp)
        .where(FloatingIp.port_id.in_(ports), ~FloatingIp.deleted)
        .order_by(FloatingIp.address, FloatingIp.id)
    )
    for row in await session.scalars(query):
        out.setdefault(row.port_id or "", []).append(row)
    return out
