"""The power state a host is asked to show: none while a boot or a command is under way.

A reconcile that saw a half-spawned domain (defined, not yet started) must not report it
as shut down: its report would land after the boot made the server ACTIVE.
"""

from __future__ import annotations

import pytest

from compute_svc.db.models import Server
from compute_svc.domain.desired import wanted_power


@pytest.mark.parametrize(
    ("status", "task_state", "wanted"),
    [
        ("BUILD", "spawning", None),
        ("BUILD", None, None),
        ("ACTIVE", "powering-off", None),
        ("SHUTOFF", "powering-on", None),
        ("ACTIVE", None, "running"),
        ("REBOOT", None, "running"),
        ("SHUTOFF", None, "shutdown"),
    ],
)
def test_wanted_power(status: str, task_state: str | None, wanted: str | None) -> None:
    assert wanted_power(Server(status=status, task_state=task_state)) == wanted
