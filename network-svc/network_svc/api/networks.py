"""``/v2.0/networks``."""

from __future__ import annotations

from typing import Any

from ..db.models import Network
from ..domain import networks
from .deps import Call
from .resources import crud_router


async def _create(call: Call, body: dict[str, Any]) -> Network:
    return await networks.create(call.session, call.ctx, call.settings, body)


router = crud_router("networks", "network", networks, create=_create)
