"""The one place that runs host commands: argv lists only, always with a timeout.

Example::

    out = run(["iptables", "-w", "5", "-S"], timeout=10)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from network_svc.drivers.base import DriverError


class CommandError(DriverError):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)!s} exited {code}: {stderr.strip()[:500]}")
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr


def run(
    argv: Sequence[str], timeout: float = 30.0, *, input: str | None = None, check: bool = True
) -> str:
    """Run argv, return stdout; raise CommandError on failure (unless check=False)."""
    if isinstance(argv, str):
        raise TypeError("argv must be a list, never a shell string")
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout}s") from exc
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return proc.stdout


def in_netns(namespace: str | None, argv: Sequence[str]) -> list[str]:
    """Prefix argv so it runs inside a named network namespace (None: the host)."""
    return ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)
