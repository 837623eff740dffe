"""The network group of ``stackling doctor``: real kernel probes (as root), nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from pyroute2 import netns
from typer.testing import CliRunner

from common_rpc.cli.main import app
from common_rpc.cli.probe import PREFIX, Status
from network_svc.checks import (
    check_br_netfilter,
    check_dnsmasq,
    check_iptables,
    scratch_netns,
)

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
    result = runner.invoke(app, ["doctor", "--json", "--require", "network"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("netns", "bridge", "veth", "vxlan", "ip-forward", "br-netfilter"):
        assert rows[name]["status"] == "OK", rows[name]
        assert rows[name]["group"] == "network" and rows[name]["required"]
    assert {row["group"] for row in rows.values()} >= {"network", "volume", "compute"}
    assert leftovers() - before == set()


@as_root
def test_scratch_netns_is_removed_even_when_the_probe_fails() -> None:
    with pytest.raises(RuntimeError), scratch_netns() as name:
        assert name.startswith(PREFIX) and name in netns.listnetns()
        raise RuntimeError("probe failed")
    assert name not in netns.listnetns()


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
