"""`make setup` and `make run` agree on the data directory: the Makefile's DATA_DIR (or
STACKLING_DATA_DIR) reaches deploy/setup.sh, which writes the identity keys there, and every
process `make run` starts, which read the keys and keep their SQLite files, clouds.yaml and
credentials.json there.

Set-up itself runs here with the opt-outs (about a second: everything else is in place).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPS = {"STACKLING_SKIP_APT": "1", "STACKLING_SKIP_DAEMONS": "1", "STACKLING_SKIP_GUEST": "1"}


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("STACKLING_DATA_DIR", "DATA_DIR")}
    return clean | extra


def _dry_run(*args: str, **env: str) -> list[str]:
    """The recipe lines `make -n run ...` would run, joined over backslash continuations."""
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", *args],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return out.replace("\\\n", " ").splitlines()


def _data_dirs(lines: list[str]) -> dict[str, str]:
    """Recipe -> the STACKLING_DATA_DIR it gives (set-up's and honcho's)."""
    found = {}
    for line in lines:
        match = re.search(r"STACKLING_DATA_DIR=(\S+)", line)
        if match is None:
            continue
        value = shlex.split(match.group(1))[0]
        if "deploy/setup.sh" in line:
            found["setup"] = value
        elif "honcho start" in line:
            found["run"] = value
    return found


def test_make_run_gives_setup_and_the_processes_the_same_data_dir(tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    assert _data_dirs(_dry_run(f"DATA_DIR={where}")) == {"setup": str(where), "run": str(where)}
    # The variable wins over the environment; the environment over the default.
    lines = _dry_run(f"DATA_DIR={where}", STACKLING_DATA_DIR=str(tmp_path / "env"))
    assert _data_dirs(lines) == {"setup": str(where), "run": str(where)}
    lines = _dry_run(STACKLING_DATA_DIR=str(tmp_path / "env"))
    assert _data_dirs(lines) == {"setup": str(tmp_path / "env"), "run": str(tmp_path / "env")}
    default = str(ROOT / "data")
    assert _data_dirs(_dry_run()) == {"setup": default, "run": default}


def test_a_relative_data_dir_is_made_absolute_once_for_both() -> None:
    # The processes run with honcho's working directory; set-up cds into the repo.
    expected = str(ROOT / "some" / "rel")
    assert _data_dirs(_dry_run("DATA_DIR=some/rel")) == {"setup": expected, "run": expected}


def test_make_setup_writes_the_keys_into_data_dir(tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    setup = subprocess.run(
        ["make", "--no-print-directory", "setup", f"DATA_DIR={where}"],
        cwd=ROOT,
        env=_env(**SKIPS, STACKLING_DATA_DIR=str(tmp_path / "not-this-one")),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    assert f"identity keys: generated in {where}/keys" in setup.stdout
    assert sorted(p.name for p in (where / "keys").iterdir()) == ["identity.key", "identity.pub"]
    assert not (tmp_path / "not-this-one").exists()

    # A lost public half is written again from the private key that is kept.
    private = (where / "keys" / "identity.key").read_bytes()
    (where / "keys" / "identity.pub").unlink()
    again = subprocess.run(
        ["bash", str(ROOT / "deploy" / "setup.sh")],
        cwd=tmp_path,
        env=_env(**SKIPS, STACKLING_DATA_DIR="elsewhere"),  # relative to where it runs
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"identity keys: generated in {where}/keys" in again.stdout
    assert (where / "keys" / "identity.key").read_bytes() == private
    assert (where / "keys" / "identity.pub").exists()
