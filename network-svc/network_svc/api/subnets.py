"""``/v2.0/subnets``; a change of what dnsmasq or a router serves is pushed to the hosts."""

from __future__ import annotations

from typing import Any

from ..db.models import Subnet
from ..domain import changes, push, subnets
from ..wiring import Deps
from .deps import Call
from .resources import crud_router


async def _create(call: Call, body: dict[str, Any]) -> Subnet:
    return await subnets.create(call.session, call.ctx, call.settings, body)


async def _update(call: Call, subnet_id: str, body: dict[str, Any]) -> Subnet:
    return await subnets.update(call.session, call.ctx, subnet_id, body, call.settings)


async def _changed(deps: Deps, _subnet: Any, info: dict[str, Any]) -> None:
    """Committed: routers with a new next hop, then every host serving the network."""
    await push.routers_changed(deps, info.get(changes.ROUTERS_KEY) or {})
    await push.networks_changed(deps, info.get(changes.NETWORKS_KEY) or set())


router = crud_router(
    "subnets",
    "subnet",
    subnets,
    create=_create,
    modify=_update,
    after_create=_changed,
    after_update=_changed,
    after_remove=_changed,
    tagged=True,
)
