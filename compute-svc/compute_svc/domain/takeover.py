"""Work a dead compute-api replica left behind: its boots and deletes are taken over.

A boot or delete runs as a task of the replica that took the request, and the server's
``task_owner`` names that process (``Deps.instance``). Every replica records a heartbeat
in the ``agents`` table (binary ``compute-api``) every ``api_heartbeat_s``; one silent for
``api_down_after_s`` is dead. Any live replica then takes its ``BUILD`` and ``DELETING``
servers over, one compare-and-swap on ``task_owner`` each, and runs their work again from
the top. That is safe because every step is idempotent: the boot keeps its claim, its
ports come back from their operation ids, the agent answers an existing domain; a boot
that finds its server taken from it stops without releasing anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, update

from common_rpc.agents import AgentRegistry, record_heartbeat

from ..db.models import Server
from ..wiring import Deps
from .boot import start_boot
from .common import transaction
from .deletion import start_delete

log = logging.getLogger(__name__)

API_BINARY = "compute-api"
TAKEN_STATES = ("BUILD", "DELETING")


def register(deps: Deps) -> None:
    """The heartbeat and the takeover, as background jobs of the runtime."""
    started_at = datetime.now(UTC)
    every = deps.settings.api_heartbeat_s

    async def beat() -> None:
        await heartbeat(deps, started_at)

    async def adopt() -> None:
        await take_over(deps)

    deps.runtime.add_job(f"{API_BINARY}-heartbeat", beat, interval=every)
    deps.runtime.add_job(f"{API_BINARY}-takeover", adopt, interval=every)


async def heartbeat(deps: Deps, started_at: datetime) -> None:
    async with deps.runtime.sessions() as session, session.begin():
        await record_heartbeat(
            session,
            binary=API_BINARY,
            host=deps.instance,
            topic="compute",
            started_at=started_at,
            capabilities={},
        )


async def take_over(deps: Deps) -> list[str]:
    """Adopt the servers of replicas that stopped beating; the ids taken."""
    registry = AgentRegistry(deps.runtime.sessions, down_after_s=deps.settings.api_down_after_s)
    alive = {*await registry.alive_hosts(API_BINARY), deps.instance}
    async with transaction(deps.runtime.sessions, write=False) as session:
        orphans = (
            await session.execute(
                select(Server.id, Server.status, Server.task_owner).where(
                    Server.status.in_(TAKEN_STATES),
                    Server.task_owner.is_not(None),
                    Server.task_owner.not_in(alive),
                )
            )
        ).all()
    taken: list[str] = []
    for orphan in orphans:
        async with transaction(deps.runtime.sessions) as session:
            moved = await session.execute(
                update(Server)
                .where(
                    Server.id == orphan.id,
                    Server.status == orphan.status,
                    Server.task_owner == orphan.task_owner,
                )
                .values(task_owner=deps.instance)
                .execution_options(synchronize_session=False)
            )
            if getattr(moved, "rowcount", 0) != 1:
                continue  # another replica was first
            server = await session.get(Server, orphan.id)
            assert server is not None
            session.expunge(server)
        log.warning(
            "server %s: %s of %s (no heartbeat) taken over",
            orphan.id,
            "boot" if orphan.status == "BUILD" else "delete",
            orphan.task_owner,
        )
        if orphan.status == "BUILD":
            start_boot(deps, server)
        else:
            start_delete(deps, server)
        taken.append(orphan.id)
    return taken
