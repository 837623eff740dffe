"""A private tgtd per test (its own control port and portal) and QEMU's iSCSI initiator.

The test may kill and restart its tgtd without touching the machine's one; everything it
exported goes with the daemon, which the fixture kills (SIGKILL: tgtd ignores SIGTERM)
even when the test fails.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common_rpc.testing import free_port

SOCKET_DIR = Path("/var/run/tgtd")


def _tgt_available() -> bool:
    return bool(shutil.which("tgtd") and shutil.which("tgtadm") and shutil.which("qemu-io"))


needs_tgt = pytest.mark.skipif(not _tgt_available(), reason="tgt or qemu-io not installed")


@dataclass
class Tgtd:
    control_port: int
    portal_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def portal(self) -> str:
        return f"127.0.0.1:{self.portal_port}"

    def start(self) -> None:
        argv = ["tgtd", "-f", "-C", str(self.control_port), "--iscsi", f"portal={self.portal}"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            shown = subprocess.run(
                ["tgtadm", "-C", str(self.control_port), "--lld", "iscsi", "--mode", "target",
                 "--op", "show"],
                capture_output=True, timeout=10, check=False,
            )  # fmt: skip
            if shown.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"tgtd on control port {self.control_port} did not answer")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def targets(self) -> str:
        return subprocess.run(
            ["tgtadm", "-C", str(self.control_port), "--lld", "iscsi", "--mode", "target",
             "--op", "show"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip

    def account_names(self) -> str:
        return subprocess.run(
            ["tgtadm", "-C", str(self.control_port), "--lld", "iscsi", "--mode", "account",
             "--op", "show"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip

    def cleanup(self) -> None:
        self.kill()
        for name in (f"socket.{self.control_port}", f"socket.{self.control_port}.lock"):
            (SOCKET_DIR / name).unlink(missing_ok=True)


def _free_control_port() -> int:
    while True:
        port = random.randint(20000, 32000)  # tgtd takes at most 32767
        if not (SOCKET_DIR / f"socket.{port}").exists():
            return port


@pytest.fixture(name="tgtd")
def tgtd_fixture(tmp_path: Path) -> Iterator[Tgtd]:
    daemon = Tgtd(_free_control_port(), free_port(), tmp_path / "tgtd.log")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.cleanup()


def qemu_io(
    tmp_path: Path,
    data: dict[str, Any],
    *commands: str,
    password: str | None = None,
    initiator: str,
) -> subprocess.CompletedProcess[str]:
    """Run qemu-io commands against the export ``data`` (initialize_connection's) as
    ``initiator``, logging in with CHAP (``password`` overrides the real secret)."""
    secret = tmp_path / "chap-secret"
    secret.write_text(password if password is not None else data["auth_password"])
    portal = data["target_portal"]
    opts = ",".join(
        [
            "driver=iscsi",
            "transport=tcp",
            f"portal={portal}",
            f"target={data['target_iqn']}",
            f"lun={data['target_lun']}",
            f"user={data['auth_username']}",
            "password-secret=chap0",
            f"initiator-name={initiator}",
        ]
    )
    argv = ["qemu-io", "--object", f"secret,id=chap0,file={secret}", "--image-opts", opts]
    for command in commands:
        argv += ["-c", command]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    finally:
        secret.unlink(missing_ok=True)


def pattern_ok(result: subprocess.CompletedProcess[str]) -> bool:
    text = result.stdout + result.stderr
    return (
        result.returncode == 0
        and "Pattern verification failed" not in text
        and "can't open" not in text
        and "failed" not in text.lower()
    )
