"""``/v2.0/ports``."""

from __future__ import annotations

from ..domain import ports
from .resources import crud_router

router = crud_router("ports", "port", ports)
