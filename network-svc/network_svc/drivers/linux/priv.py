"""The network drivers' host commands, run by the chassis' one runner (argv lists only, a
timeout always, secrets hidden in errors); a failure is this service's ``DriverError``.

Example::

    out = run(["iptables", "-w", "5", "-S"], timeout=10)
    run(in_netns("qdhcp-6f1c…", ["ip", "route"]), timeout=10)
"""

from __future__ import annotations

from collections.abc import Sequence

from common_rpc.chassis import commands
from common_rpc.chassis.commands import in_netns
from network_svc.drivers.base import DriverError

__all__ = ["CommandError", "in_netns", "run"]


class CommandError(commands.CommandError, DriverError):
    """A host command failed, timed out or was not found: a driver error for the agent."""


def run(
    argv: Sequence[str], timeout: float = 30.0, *, input: str | None = None, check: bool = True
) -> str:
    """Run argv, return stdout; raise CommandError on failure (unless check=False)."""
    return commands.run(argv, timeout, input=input, check=check, error=CommandError)
