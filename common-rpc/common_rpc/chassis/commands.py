"""The one way agents run host commands: argv lists only, a timeout always, secrets hidden.

    out = run(["iptables", "-w", "5", "-S"], timeout=10)
    run(["tgtadm", ..., "--password", secret], secret_flags={"--password"})
    run(in_netns("qrouter-x", ["ip", "route"]))

A failure raises ``CommandError`` (a ``RuntimeError``), or the subclass of it a driver
names with ``error=`` (``class CommandError(commands.CommandError, DriverError)``), so a
service's callers still catch its own driver error type. The value that
follows a secret flag (and every value given in ``secrets=``) is shown as ``***`` in the
error's text, so a CHAP password never reaches a log line or an API fault.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Sequence

HIDDEN = "***"
# Flags whose next argument is a secret, in every tool our agents run.
SECRET_FLAGS = frozenset({"--password", "--passwd", "-p:password"})


class CommandError(RuntimeError):
    """A host command failed, timed out or was not found; its text hides secrets."""

    def __init__(self, shown: str, code: int, stderr: str) -> None:
        super().__init__(f"{shown} exited {code}: {stderr.strip()[:500]}")
        self.command = shown
        self.code = code
        self.stderr = stderr


def redact(
    argv: Sequence[str],
    secret_flags: Collection[str] = SECRET_FLAGS,
    secrets: Collection[str] = (),
) -> str:
    """``argv`` as one line for logs and errors, with every secret replaced by ``***``."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next or (arg and arg in secrets):
            shown.append(HIDDEN)
        else:
            shown.append(arg)
        hide_next = arg in secret_flags
    return " ".join(shown)


def _hide(text: str, secrets: Collection[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    return text


def run(
    argv: Sequence[str],
    timeout: float = 30.0,
    *,
    input: str | bytes | None = None,
    check: bool = True,
    secret_flags: Collection[str] = SECRET_FLAGS,
    secrets: Collection[str] = (),
    error: type[CommandError] = CommandError,
) -> str:
    """Run ``argv`` and return its stdout; raise ``error`` on failure unless ``check`` is
    false (its ``code`` is -1 for a timeout and 127 for a missing program)."""
    if isinstance(argv, str):
        raise TypeError("argv must be a list, never a shell string")
    argv = list(argv)
    found_secrets = list(secrets) + [
        argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in secret_flags
    ]

    def fail(code: int, stderr: str) -> CommandError:
        shown = _hide(redact(argv, secret_flags, secrets), found_secrets)
        return error(shown, code, _hide(stderr, found_secrets))

    text = not isinstance(input, bytes)
    try:
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=text, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise fail(-1, f"timed out after {timeout:g}s") from None
    except FileNotFoundError:
        raise fail(127, f"not found: {argv[0]}") from None
    stdout = proc.stdout if text else proc.stdout.decode(errors="replace")
    if check and proc.returncode != 0:
        stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise fail(proc.returncode, stderr or stdout)
    return stdout


def in_netns(namespace: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the named network namespace (``None``: the host's)."""
    return ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)
