"""The shared command runner: argv only, timeouts, exit codes, and secrets kept out of errors."""

from __future__ import annotations

import pytest

from common_rpc.chassis.commands import CommandError, in_netns, redact, run


class DriverError(RuntimeError):
    pass


class ServiceCommandError(CommandError, DriverError):
    pass


def test_returns_stdout_and_takes_input() -> None:
    assert run(["cat"], input="hello") == "hello"
    assert run(["cat"], input=b"\x00bytes") == "\x00bytes"


def test_a_shell_string_is_refused() -> None:
    with pytest.raises(TypeError, match="argv"):
        run("echo hi")  # type: ignore[arg-type]


def test_failure_keeps_code_and_stderr() -> None:
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", "echo oops >&2; exit 3"])
    assert info.value.code == 3
    assert "oops" in info.value.stderr
    assert "exited 3: oops" in str(info.value)
    assert run(["sh", "-c", "exit 3"], check=False) == ""


def test_timeout_and_missing_program_are_command_errors() -> None:
    with pytest.raises(CommandError, match=r"timed out after 0\.2s") as info:
        run(["sleep", "5"], timeout=0.2)
    assert info.value.code == -1
    with pytest.raises(CommandError, match="not found") as info:
        run(["stackling-no-such-program"])
    assert info.value.code == 127


def test_a_service_error_class_is_raised_and_caught_as_its_driver_error() -> None:
    with pytest.raises(DriverError) as info:
        run(["false"], error=ServiceCommandError)
    assert isinstance(info.value, ServiceCommandError)
    assert info.value.code == 1


def test_secrets_never_reach_the_error_text() -> None:
    secret = "s3cr3t-chap"
    argv = ["sh", "-c", 'echo "bad password $1" >&2; exit 2', "x", "--password", secret]
    with pytest.raises(CommandError) as info:
        run(argv)
    assert secret not in str(info.value)
    assert secret not in info.value.stderr
    assert "--password ***" in str(info.value)
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", f"echo {secret} >&2; exit 1"], secrets=[secret])
    assert secret not in str(info.value)


def test_redact_and_netns_prefix() -> None:
    assert redact(["tgtadm", "--password", "pw", "-x"]) == "tgtadm --password *** -x"
    assert redact(["a", "b"], secrets=["b"]) == "a ***"
    assert in_netns("ns1", ["ip", "a"]) == ["ip", "netns", "exec", "ns1", "ip", "a"]
    assert in_netns(None, ["ip", "a"]) == ["ip", "a"]
