"""The ``auto`` target driver: LIO where the kernel target's configfs is there, tgt otherwise.

Both are found by their entry points like any other driver, so ``auto`` picks among what
is installed, not among names written here in code.
"""

from __future__ import annotations

from . import load_target
from .base import DriverConfig, TargetHelper


class AutoTarget:
    @classmethod
    def from_config(cls, config: DriverConfig) -> TargetHelper:
        return load_target("lio" if config.lio_dir.is_dir() else "tgt", config)
