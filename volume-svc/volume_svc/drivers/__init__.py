"""The volume data plane: a file backend and an iSCSI target helper, chosen by name.

backend = FileBackend(Path("/var/lib/stackling/volumes"), prefix="")
target = load_target("auto", iqn_prefix="iqn.2010-10.org.stackling", portal="10.0.0.5:3260")
# "auto": LIO where /sys/kernel/config/target exists, tgt otherwise
"""

from __future__ import annotations

from pathlib import Path

from .base import TargetHelper

LIO_DIR = Path("/sys/kernel/config/target")


def load_target(
    name: str,
    *,
    iqn_prefix: str,
    portal: str,
    tgt_control_port: int = 0,
    lio_dir: Path = LIO_DIR,
) -> TargetHelper:
    """The target helper named ``name`` (``auto``, ``tgt``, ``lio`` or ``fake``)."""
    if name == "auto":
        name = "lio" if lio_dir.is_dir() else "tgt"
    if name == "tgt":
        from .tgt import TgtTarget

        return TgtTarget(iqn_prefix=iqn_prefix, portal=portal, control_port=tgt_control_port)
    if name == "lio":
        # imported lazily: rtslib-fb is only needed where the kernel target runs
        from .lio import LioTarget

        return LioTarget(iqn_prefix=iqn_prefix, portal=portal)
    if name == "fake":
        from .fake import FakeTarget

        return FakeTarget(iqn_prefix=iqn_prefix, portal=portal)
    raise ValueError(f"unknown target helper {name!r} (known: auto, tgt, lio, fake)")
