"""Tests of ``stackling doctor``'s frame (checks found by entry points, groups, exit code)
and of the CLI plugin loader. Each service tests its own checks (``<svc>/tests/test_checks.py``).

.venv/bin/pytest common-rpc/tests/test_cli_doctor.py -q
"""

from __future__ import annotations

import json
from importlib import metadata

import pytest
import typer
from typer.testing import CliRunner

from common_rpc.cli import doctor as doctor_module
from common_rpc.cli.main import app, build_app
from common_rpc.cli.probe import CheckResult, Status, binary_check

runner = CliRunner()


def test_missing_binary_is_missing_with_a_fix() -> None:
    result = binary_check("fake", "network", "sd-no-such-binary", fix="install sd-no-such")
    assert (result.status, result.fix) == (Status.MISSING, "install sd-no-such")
    assert "sd-no-such-binary not found" in result.detail


def test_exit_code_follows_required_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_checks = {
        "network": [lambda: CheckResult("fake-net", "network", Status.OK, "fine")],
        "volume": [
            lambda: CheckResult("fake-vol", "volume", Status.MISSING, "absent", "install it")
        ],
        "compute": [lambda: CheckResult("fake-kvm", "compute", Status.WARN, "slow", "enable it")],
    }
    monkeypatch.setattr(doctor_module, "load_checks", lambda: fake_checks)
    assert runner.invoke(app, ["doctor", "--require", "network"]).exit_code == 0
    assert runner.invoke(app, ["doctor", "--require", "network,compute"]).exit_code == 0
    assert runner.invoke(app, ["doctor", "--require", "network,volume"]).exit_code == 1
    assert runner.invoke(app, ["doctor"]).exit_code == 1
    assert runner.invoke(app, ["doctor", "--require", "nonsense"]).exit_code == 2

    table = runner.invoke(app, ["doctor", "--require", "network"])
    assert "fake-vol" in table.stdout and "install it" in table.stdout
    assert "PASS" in table.stdout
    rows = json.loads(runner.invoke(app, ["doctor", "--json", "--require", "volume"]).stdout)
    assert [(r["name"], r["required"]) for r in rows] == [
        ("fake-net", False),
        ("fake-vol", True),
        ("fake-kvm", False),
    ]


class FakeEntryPoint:
    """Just what the loader reads of an importlib.metadata.EntryPoint."""

    def __init__(self, name: str, target: object) -> None:
        self.name, self.value, self._target = name, f"fake_pkg:{name}", target

    def load(self) -> object:
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_plugins_are_added_and_broken_ones_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = typer.Typer()

    @plugin.command()
    def hello() -> None:
        typer.echo("hello from the plugin")

    fakes = [
        FakeEntryPoint("fakesvc", plugin),
        FakeEntryPoint("broken", ImportError("no module named fake_pkg")),
        FakeEntryPoint("notatyper", object()),
    ]
    seen_groups: list[str] = []

    def fake_entry_points(*, group: str) -> list[FakeEntryPoint]:
        seen_groups.append(group)
        return fakes

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    stackling = build_app()
    warnings = capsys.readouterr().err
    assert seen_groups == ["stackling.cli"]
    assert "'broken' skipped: no module named fake_pkg" in warnings
    assert "'notatyper' skipped" in warnings
    result = runner.invoke(stackling, ["fakesvc", "hello"])
    assert result.exit_code == 0 and "hello from the plugin" in result.stdout


def test_every_installed_service_registers_its_checks() -> None:
    checks = doctor_module.load_checks()
    assert {"network", "volume", "compute"} <= set(checks)
    assert all(callable(check) for group in checks.values() for check in group)


def test_a_group_whose_checks_do_not_load_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_entry_points(*, group: str) -> list[FakeEntryPoint]:
        assert group == "stackling.doctor"
        return [FakeEntryPoint("broken", ImportError("no module named fake_pkg"))]

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    rows = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert [(r["group"], r["status"]) for r in rows] == [("broken", "MISSING")]
    assert "no module named fake_pkg" in rows[0]["detail"]
    assert runner.invoke(app, ["doctor"]).exit_code == 1
