"""`make run` is the demo: once it prints "ready", deploy/demo.sh boots stackling-tiny with
the openstack CLI and the clouds.yaml `make run` wrote, and shows the guest's DHCP lease.

`make run` itself runs here (honcho and the Procfile, every process of the cloud), with
what an operator may set: a data directory, the ports, a broker. What the agents make on
the host carries a ``HostLab`` prefix; the broker is a virtual host of its own. Ctrl-C
(SIGINT to honcho's process group) stops every process, and nothing of the run is left.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud import need_host
from stack import HostLab, broker_vhost

from common_rpc.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_S = 240
DEMO_S = 300


def _lines(proc: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.put(line)


@pytest.fixture
def lab() -> Iterator[HostLab]:
    need_host()
    lab = HostLab.create()
    try:
        yield lab
    finally:
        lab.sweep()


@pytest.mark.timeout(READY_S + DEMO_S + 120)
def test_make_run_then_demo_boots_a_server_whose_console_shows_its_dhcp_lease(
    lab: HostLab,
) -> None:
    data = lab.root / "data"
    with broker_vhost(f"demo-{lab.prefix}") as amqp_url:
        env = (
            os.environ
            | lab.env()
            | {
                "STACKLING_DATA_DIR": str(data),
                "STACKLING_AMQP_URL": amqp_url,
                "GATEWAY_PORT": str(free_port()),
                "COMPUTE_PORT": str(free_port()),
                "NETWORK_PORT": str(free_port()),
                "VOLUME_PORT": str(free_port()),
            }
        )
        run = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches its whole process group
        )
        output: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(run, output), daemon=True).start()
        seen: list[str] = []
        try:
            deadline = time.monotonic() + READY_S
            while not any("ready: http" in line for line in seen):
                assert run.poll() is None, "".join(seen[-60:])
                assert time.monotonic() < deadline, "".join(seen[-60:])
                try:
                    seen.append(output.get(timeout=1))
                except queue.Empty:
                    pass
            assert (data / "clouds.yaml").exists()

            demo = subprocess.run(
                ["bash", str(ROOT / "deploy/demo.sh")],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=DEMO_S,
                check=False,
            )
            assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
            assert "stackling-guest: ip 10.42.0." in demo.stdout, demo.stdout[-3000:]
            print(demo.stdout[-1500:])
            cleanup = subprocess.run(
                ["bash", str(ROOT / "deploy/demo.sh"), "--cleanup"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert cleanup.returncode == 0, cleanup.stderr[-2000:]
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C does
                try:
                    run.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, signal.SIGKILL)
                    run.wait(timeout=10)
        stopped = [p for p in _our_processes(data) if p]
        assert stopped == [], f"still running after Ctrl-C: {stopped}"
    deadline = time.monotonic() + 30
    while any(lab.leftovers().values()) and time.monotonic() < deadline:
        time.sleep(1)
    left = {k: v for k, v in lab.leftovers().items() if v}
    assert left == {}, f"left on the host by the demo: {left}"


def _our_processes(data: Path) -> list[str]:
    """Stackling processes still running with this run's data directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"STACKLING_DATA_DIR={data}".encode() in environ and ".venv/bin/" in cmd:
            found.append(f"{entry.name} {cmd}")
    return found
