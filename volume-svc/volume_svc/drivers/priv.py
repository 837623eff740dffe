"""The one place that runs host commands: argv lists only, always with a timeout.

out = run(["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"], timeout=10)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from .base import DriverError


class CommandError(DriverError):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        shown = " ".join(a if "password" not in prev else "***" for prev, a in _pairs(argv))
        super().__init__(f"{shown} exited {code}: {stderr.strip()[:500]}")
        self.code = code
        self.stderr = stderr


def _pairs(argv: Sequence[str]) -> list[tuple[str, str]]:
    # A CHAP secret follows --password: never let it into a log line or an error.
    return list(zip(["", *argv[:-1]], argv, strict=True))


def run(argv: Sequence[str], timeout: float = 30.0, *, check: bool = True) -> str:
    """Run argv, return stdout; raise CommandError on failure (unless check=False)."""
    if isinstance(argv, str):
        raise TypeError("argv must be a list, never a shell string")
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout}s") from exc
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout
