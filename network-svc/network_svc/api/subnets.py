"""``/v2.0/subnets``."""

from __future__ import annotations

from typing import Any

from ..db.models import Subnet
from ..domain import subnets
from .deps import Call
from .resources import crud_router


async def _create(call: Call, body: dict[str, Any]) -> Subnet:
    return await subnets.create(call.session, call.ctx, call.settings, body)


router = crud_router("subnets", "subnet", subnets, create=_create)
