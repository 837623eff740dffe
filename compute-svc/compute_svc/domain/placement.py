"""Which hosts may take a server, then the claim on one of them (``scheduler``'s).

The filters, in Nova's order of concern: the host is alive and its service enabled
(``scheduler.alive_hosts``), in the zone the create asked for, the host an admin named
(``zone:host`` at create, ``host`` at evacuate or migrate), not the host the server
moves away from, and allowed by the server's group (``server_groups.Rule``). What is
left is weighed by ``COMPUTE_SCHEDULER_STRATEGY`` and claimed in the caller's
transaction, the group's turn taken in it.

    wanted = Wanted.of_request(server.availability_zone)
    hosts = await candidates(deps)                        # alive, enabled, with zones
    host = await place(session, deps.settings, key, need, hosts, wanted, server.id)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..settings import ComputeSettings
from ..wiring import Deps
from . import scheduler, server_groups


@dataclass(frozen=True)
class Wanted:
    """What one placement asks beyond room."""

    zone: str | None = None
    host: str | None = None
    avoid: frozenset[str] = frozenset()

    @classmethod
    def of_request(cls, requested: str | None, **more: object) -> Wanted:
        """From the create's ``availability_zone``: ``zone`` or ``zone:host`` (Nova's
        admin form; an empty zone, ``:host``, means any zone)."""
        zone, _, host = (requested or "").partition(":")
        host = host.partition(":")[0]
        return cls(zone=zone or None, host=host or None, **more)  # type: ignore[arg-type]


def split(requested: str | None) -> tuple[str | None, str | None]:
    """``zone:host`` -> (zone, host); missing parts are None."""
    wanted = Wanted.of_request(requested)
    return wanted.zone, wanted.host


async def candidates(deps: Deps) -> list[scheduler.Capacity]:
    """The hosts the scheduler may use now, with their room and zone."""
    settings = deps.settings
    return await scheduler.alive_hosts(
        deps.agents, scheduler.Ratios.of(settings), settings.default_availability_zone
    )


def filtered(
    hosts: list[scheduler.Capacity], wanted: Wanted, rule: server_groups.Rule | None
) -> list[scheduler.Capacity]:
    return [
        cap
        for cap in hosts
        if (wanted.zone is None or cap.zone == wanted.zone)
        and (wanted.host is None or cap.host == wanted.host)
        and cap.host not in wanted.avoid
        and (rule is None or rule.allows(cap.host))
    ]


async def place(
    session: AsyncSession,
    settings: ComputeSettings,
    key: str,
    need: scheduler.Need,
    hosts: list[scheduler.Capacity],
    wanted: Wanted,
    server_id: str,
) -> scheduler.Capacity | None:
    """Claim ``need`` under ``key`` on a host the filters leave; None when none fits.

    ``server_id``'s group (if any) takes its turn first, in this transaction.
    """
    rule = await server_groups.rule_for(session, server_id)
    left = filtered(hosts, wanted, rule)
    host = await scheduler.claim(session, key, need, left, settings.scheduler_strategy)
    return next((cap for cap in left if cap.host == host), None)
