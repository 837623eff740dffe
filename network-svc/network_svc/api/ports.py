"""``/v2.0/ports``."""

from __future__ import annotations

from typing import Any

from ..db.models import Port
from ..domain import ports, routers
from ..rpc.push import port_removed
from .resources import crud_router


async def _removed(runtime: Any, port: Port, info: dict[str, Any]) -> None:
    await port_removed(runtime, port, info.get(routers.CHANGED_KEY))


router = crud_router("ports", "port", ports, after_remove=_removed)
