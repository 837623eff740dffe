"""``/v2.0/ports``."""

from __future__ import annotations

from ..domain import ports
from ..rpc.push import port_removed
from .resources import crud_router

router = crud_router("ports", "port", ports, after_remove=port_removed)
