"""The import boundaries in ``.importlinter`` hold, and breaking one fails ``lint-imports``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = {
    "common-rpc": "common_rpc",
    "compute-svc": "compute_svc",
    "network-svc": "network_svc",
    "volume-svc": "volume_svc",
    "api-gateway": "api_gateway",
}


def lint_imports(path_first: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_first is not None:  # these copies shadow the installed packages
        env["PYTHONPATH"] = str(path_first)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / ".importlinter")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=path_first or ROOT,
    )


def copy_packages(into: Path) -> None:
    for directory, package in PACKAGES.items():
        shutil.copytree(
            ROOT / directory / package,
            into / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


def test_the_repository_keeps_its_contracts() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("compute_svc/api/_across.py", "import network_svc.db\n", "No service imports another"),
        ("common_rpc/_across.py", "import volume_svc\n", "common_rpc imports no service"),
        ("volume_svc/agent/_across.py", "from volume_svc.db import models\n", "agent/ imports"),
        ("network_svc/api/_across.py", "import network_svc.drivers\n", "api/ does not import"),
        ("api_gateway/domain/_across.py", "import api_gateway.api\n", "domain/ does not import"),
    ],
)
def test_an_import_across_a_boundary_fails(
    tmp_path: Path, module: str, source: str, contract: str
) -> None:
    copy_packages(tmp_path)
    (tmp_path / module).write_text(source)
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
