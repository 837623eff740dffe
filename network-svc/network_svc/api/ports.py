"""``/v2.0/ports``."""

from __future__ import annotations

from typing import Any

from ..db.models import Port
from ..domain import changes, ports, push
from ..wiring import Deps
from .deps import Call
from .resources import crud_router


async def _create(call: Call, body: dict[str, Any]) -> Port:
    return await ports.create(call.session, call.ctx, call.settings, body)


async def _updated(deps: Deps, _port: Port, info: dict[str, Any]) -> None:
    """New groups, addresses or port security: its host re-wires it, and the hosts
    matching on its groups refill their member sets."""
    if changes.REWIRED_KEY in info:
        port_id, groups = info[changes.REWIRED_KEY]
        await push.ports_rewired(deps, [port_id])
        await push.members_changed(deps, groups)


async def _removed(deps: Deps, port: Port, info: dict[str, Any]) -> None:
    await push.port_removed(deps, port, info.get(changes.ROUTERS_KEY))


router = crud_router(
    "ports",
    "port",
    ports,
    create=_create,
    after_update=_updated,
    after_remove=_removed,
    tagged=True,
)
