"""Tests of ``stackling doctor`` on the real kernel (run as root) and of the plugin loader.

.venv/bin/pytest common-rpc/tests/test_cli_doctor.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import typer
from pyroute2 import netns
from typer.testing import CliRunner

from common_rpc.cli import doctor as doctor_module
from common_rpc.cli.checks_compute import check_kvm
from common_rpc.cli.checks_network import check_br_netfilter, check_dnsmasq, check_iptables
from common_rpc.cli.checks_volume import check_iscsi_target
from common_rpc.cli.main import app, build_app
from common_rpc.cli.probe import PREFIX, CheckResult, Status, binary_check, scratch_netns

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates network namespaces")
runner = CliRunner()


def leftovers() -> set[str]:
    """Namespaces and host links whose name carries the doctor's prefix."""
    names = {name for name in netns.listnetns() if name.startswith(PREFIX)}
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    for line in links.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0]
        if ifname.startswith(PREFIX):
            names.add(ifname)
    return names


@as_root
def test_doctor_json_reports_kernel_networking_ok_and_leaves_nothing() -> None:
    before = leftovers()
    result = runner.invoke(app, ["doctor", "--json"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("netns", "bridge", "veth", "vxlan", "ip-forward", "br-netfilter"):
        assert rows[name]["status"] == "OK", rows[name]
    assert {row["group"] for row in rows.values()} == {"network", "volume", "compute"}
    assert all(row["required"] for row in rows.values())
    assert leftovers() - before == set()


@as_root
def test_scratch_netns_is_removed_even_when_the_probe_fails() -> None:
    with pytest.raises(RuntimeError), scratch_netns() as name:
        assert name.startswith(PREFIX) and name in netns.listnetns()
        raise RuntimeError("probe failed")
    assert name not in netns.listnetns()


def test_missing_binary_is_missing_with_a_fix() -> None:
    result = binary_check("fake", "network", "sd-no-such-binary", fix="install sd-no-such")
    assert (result.status, result.fix) == (Status.MISSING, "install sd-no-such")
    assert "sd-no-such-binary not found" in result.detail


@pytest.mark.parametrize("check", [check_dnsmasq, check_iptables])
def test_network_binaries_missing_from_path(check, tmp_path: Path) -> None:
    result = check(path=str(tmp_path))
    assert result.status is Status.MISSING
    assert result.fix.startswith("apt-get install")


def test_binary_that_does_not_run_is_missing(tmp_path: Path) -> None:
    broken = tmp_path / "dnsmasq"
    broken.write_text("#!/bin/sh\necho 'cannot load libs' >&2\nexit 127\n")
    broken.chmod(0o755)
    result = check_dnsmasq(path=str(tmp_path))
    assert result.status is Status.MISSING and "cannot load libs" in result.detail


def test_br_netfilter_reads_the_sysctl(tmp_path: Path) -> None:
    sysctl = tmp_path / "bridge-nf-call-iptables"
    assert check_br_netfilter(sysctl).status is Status.MISSING
    sysctl.write_text("0\n")
    assert check_br_netfilter(sysctl).fix.startswith("sysctl -w")
    sysctl.write_text("1\n")
    assert check_br_netfilter(sysctl).status is Status.OK


def test_iscsi_target_accepts_lio_or_tgt(tmp_path: Path) -> None:
    assert check_iscsi_target(path=str(tmp_path), lio_dir=tmp_path / "no").status is Status.MISSING
    assert check_iscsi_target(path=str(tmp_path), lio_dir=tmp_path).detail.startswith("LIO")


def test_kvm_absent_is_only_a_warning(tmp_path: Path) -> None:
    result = check_kvm(device=tmp_path / "kvm", path=str(tmp_path))
    assert result.status is Status.WARN and "TCG unavailable" in result.detail


def test_exit_code_follows_required_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_checks = [
        lambda: CheckResult("fake-net", "network", Status.OK, "fine"),
        lambda: CheckResult("fake-vol", "volume", Status.MISSING, "absent", "install it"),
        lambda: CheckResult("fake-kvm", "compute", Status.WARN, "slow", "enable it"),
    ]
    monkeypatch.setattr(doctor_module, "CHECKS", fake_checks)
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
