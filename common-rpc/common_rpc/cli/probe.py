"""Building blocks of ``stackling doctor``: the result type and safe ways to probe the host.

Every command is an argument list run without a shell and with a timeout. Anything a probe
creates in the kernel carries a name that starts with ``PREFIX`` and is removed even when
the probe fails. Each service keeps its own checks (``<svc>/checks.py``) and registers them
in the ``stackling.doctor`` entry-point group under its group name.

    >>> result = binary_check("sh", "network", "sh", fix="apt-get install dash", version_arg=None)
    >>> result.status
    <Status.OK: 'OK'>
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "sd-"


class Status(StrEnum):
    OK = "OK"
    MISSING = "MISSING"
    WARN = "WARN"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. ``MISSING`` fails its group; ``WARN`` never does."""

    name: str
    group: str
    status: Status
    detail: str
    fix: str = ""


class ProbeFailed(Exception):
    """A probe step did not work; the message says what happened."""


def unique_name() -> str:
    """A fresh name such as ``sd-3f9a01bc`` (11 characters, fits an interface name)."""
    return PREFIX + secrets.token_hex(4)


def run(argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str]:
    """Run ``argv`` (no shell); return its exit code and its stripped stdout+stderr.

    A missing program gives 127 and a timeout gives 124, as a shell would report them.
    """
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: no answer within {timeout:g}s"
    return done.returncode, (done.stdout + done.stderr).strip()


def run_ok(argv: Sequence[str], timeout: float = 10.0) -> str:
    """Like ``run`` but raise ``ProbeFailed`` (with the program's output) unless it exits 0."""
    code, out = run(argv, timeout)
    if code != 0:
        raise ProbeFailed(f"{' '.join(argv)} exited {code}: {out or 'no output'}")
    return out


def find(binary: str, path: str | None = None) -> str | None:
    """The full path of ``binary`` in ``path`` (default: ``$PATH``), or None."""
    return shutil.which(binary, path=path)


def netns_exec(ns: str, argv: Sequence[str], path: str | None = None) -> list[str]:
    """The argument list running ``argv`` inside namespace ``ns`` with ``ip netns exec``."""
    ip = find("ip", path)
    if ip is None:
        raise ProbeFailed("ip (iproute2) not found")
    return [ip, "netns", "exec", ns, *argv]


def attempt(
    name: str,
    group: str,
    probe: Callable[[], str],
    fix: str,
    on_failure: Status = Status.MISSING,
    errors: tuple[type[BaseException], ...] = (),
    describe: Callable[[BaseException], str] | None = None,
) -> CheckResult:
    """Run ``probe`` (which returns an OK detail); turn a command error, an ``OSError`` or
    one of ``errors`` (a kernel library's own) into a result, worded by ``describe``."""
    try:
        detail = probe()
    except (OSError, ProbeFailed, *errors) as exc:
        text = (describe or default_description)(exc)
        return CheckResult(name, group, on_failure, text, fix)
    return CheckResult(name, group, Status.OK, detail)


def default_description(exc: BaseException) -> str:
    """A one-line description of ``exc`` for the detail column."""
    return str(exc) or type(exc).__name__


def binary_check(
    name: str,
    group: str,
    binary: str,
    fix: str,
    path: str | None = None,
    version_arg: str | None = "--version",
) -> CheckResult:
    """OK when ``binary`` is on the path and runs (``version_arg`` exits 0), MISSING otherwise."""
    found = find(binary, path)
    if found is None:
        return CheckResult(name, group, Status.MISSING, f"{binary} not found in PATH", fix)
    if version_arg is None:
        return CheckResult(name, group, Status.OK, found)
    code, out = run([found, version_arg], timeout=5.0)
    first = next((line.strip() for line in out.splitlines() if line.strip()), "")
    if code != 0:
        detail = f"{found} does not run ({version_arg} exited {code}: {first or 'no output'})"
        return CheckResult(name, group, Status.MISSING, detail, fix)
    return CheckResult(name, group, Status.OK, f"{found} ({first})" if first else found)
