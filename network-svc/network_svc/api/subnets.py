"""``/v2.0/subnets``."""

from __future__ import annotations

from ..domain import subnets
from .resources import crud_router

router = crud_router("subnets", "subnet", subnets)
