"""What the server flows share: the context they act in, faults, guarded state moves.

Flows (``boot``, ``deletion``, ``power``, ``volumes``) run as background tasks after the
API answered (``Deps.tasks``), as the server's project, and move the row with
compare-and-swap updates only, so a delete or the sweeper racing with a boot never both
act on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common_rpc.context import RequestContext, current_context, new_request_id

from ..db.models import Server
from ..wiring import Deps
from . import servers
from .common import iso, transaction

BUILDING = ("BUILD",)


# The agent's power states and Nova's codes for them (OS-EXT-STS:power_state).
POWER_CODES = {"nostate": 0, "running": 1, "paused": 3, "shutdown": 4, "crashed": 6}


def power_code(state: Any, default: int = 0) -> int:
    if isinstance(state, int) and not isinstance(state, bool):
        return state
    return POWER_CODES.get(str(state), default)


class Aborted(Exception):
    """The server left BUILD meanwhile (deleted, or swept to ERROR): stop and release."""


class Superseded(Exception):
    """Another replica took the server's work over (this one was thought dead): stop, and
    release nothing, since what was taken is now the other replica's to finish."""


async def lost(deps: Deps, server_id: str) -> Exception:
    """Why a compare-and-swap of this process's work on ``server_id`` failed."""
    row = await load(deps, server_id)
    if row is not None and row.status in BUILDING and row.task_owner != deps.instance:
        return Superseded(server_id)
    return Aborted(server_id)


class BootFailed(Exception):
    """A step failed; the message becomes the server's fault."""

    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code


def server_context(server: Server) -> RequestContext:
    """The flows act as the server's project, whoever asked (an admin, the sweeper)."""
    parent = current_context()
    return RequestContext(
        request_id=parent.request_id if parent.request_id != "-" else new_request_id(),
        project_id=server.project_id,
        user_id=server.user_id or None,
        roles=frozenset({"member"}),
    )


def fault(message: str, code: int = 500) -> dict[str, Any]:
    return {"code": code, "message": message, "created": iso(datetime.now(UTC))}


async def load(deps: Deps, server_id: str) -> Server | None:
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is not None:
            session.expunge(server)
        return server


async def progress(deps: Deps, server_id: str, task_state: str, **values: Any) -> None:
    async with transaction(deps.runtime.sessions) as session:
        moved = await servers.move(
            session,
            server_id,
            expected=BUILDING,
            owner=deps.instance,
            task_state=task_state,
            **values,
        )
    if not moved:
        raise await lost(deps, server_id)
