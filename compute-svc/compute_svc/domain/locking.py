"""Nova's server lock: ``lock`` / ``unlock`` and the check every other action makes.

A locked server refuses what its project's members ask of it (409, ``Instance <id> is
locked``) except ``unlock``; admins are not held by it (Nova's ``check_instance_lock``).
Who locked it is kept: ``owner`` when its own project did, ``admin`` when another
project's admin did, and then only an admin may unlock it (Nova's default
``os-lock-server:unlock:unlock_override``, 403 otherwise).

    await request(deps, ctx, server_id, "lock", {"locked_reason": "maintenance"})
    check(server, ctx)     # raises 409 for a member while the server is locked
"""

from __future__ import annotations

from typing import Any

from common_rpc.context import RequestContext

from ..db.models import Server, utcnow
from ..wiring import Deps
from . import servers
from .common import transaction
from .errors import bad_field, conflict, forbidden

LOCK, UNLOCK = "lock", "unlock"
ACTIONS = (LOCK, UNLOCK)
# Actions a locked server still answers for anyone (they change nothing on it; Nova's
# snapshot has no lock check either), and the admin-only ones (an admin is not held;
# anyone else is refused with 403 first).
UNCHECKED = ("lock", "unlock", "os-getConsoleOutput", "createImage", "evacuate", "migrate")


def locked_error(server_id: str) -> Exception:
    return conflict(f"Instance {server_id} is locked")


def check(server: Server, ctx: RequestContext) -> None:
    """409 when ``server`` is locked and the caller is not an admin."""
    if server.locked_by and not ctx.is_admin:
        raise locked_error(server.id)


async def check_id(deps: Deps, ctx: RequestContext, server_id: str) -> None:
    """``check`` by id (404 for a server the caller may not see)."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        check(await servers.get(session, ctx, server_id), ctx)


def _reason(action: str, args: Any) -> str | None:
    """``{"lock": null}``, or 2.73's ``{"lock": {"locked_reason": "..."}}``."""
    if args is None:
        return None
    if not isinstance(args, dict):
        raise bad_field(action, args, f"{args!r} is not of type 'object', 'null'")
    unknown = set(args) - ({"locked_reason"} if action == LOCK else set())
    if unknown:
        raise bad_field(action, args, f"Additional properties are not allowed ({sorted(unknown)})")
    reason = args.get("locked_reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 255):
        raise bad_field("locked_reason", reason, f"{reason!r} is not a string of 0-255")
    return reason


async def request(deps: Deps, ctx: RequestContext, server_id: str, action: str, args: Any) -> None:
    """Lock or unlock (any status, as Nova); an event ``compute.server.<action>.end``."""
    reason = _reason(action, args)
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        if action == LOCK:
            server.locked_by = "owner" if ctx.project_id == server.project_id else "admin"
            server.locked_reason = reason
        else:
            if server.locked_by == "admin" and not ctx.is_admin:
                raise forbidden(
                    "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override "
                    "to be performed."
                )
            server.locked_by = None
            server.locked_reason = None
        server.updated_at = utcnow()
        await session.flush()
        await servers.emit(session, server, action, "end")


def view_fields(server: Server, version: tuple[int, int]) -> dict[str, Any]:
    """``locked`` (2.9) and ``locked_reason`` (2.73) at the microversion served."""
    out: dict[str, Any] = {}
    if version >= (2, 9):
        out["locked"] = server.locked_by is not None
    if version >= (2, 73):
        out["locked_reason"] = server.locked_reason
    return out
