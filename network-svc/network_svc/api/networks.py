"""``/v2.0/networks``."""

from __future__ import annotations

from typing import Any

from ..db.models import Network
from ..domain import networks
from ..domain.push import network_removed
from ..wiring import Deps
from .deps import Call
from .resources import crud_router


async def _create(call: Call, body: dict[str, Any]) -> Network:
    return await networks.create(call.session, call.ctx, call.settings, body)


async def _removed(deps: Deps, network: Network, _info: dict[str, Any]) -> None:
    await network_removed(deps, network)


router = crud_router(
    "networks",
    "network",
    networks,
    create=_create,
    after_remove=_removed,
    tagged=True,
    view_settings=True,
    get="get_shown",
)
