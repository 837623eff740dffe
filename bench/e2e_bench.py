"""End-to-end benchmark: one tenant's whole scenario on the whole cloud, step by step.

The e2e tests' cloud (``tests/e2e/cloud.py``): the gateway, the four APIs and the three
agents on this machine (libvirt ``qemu:///system``, TCG guests; tgt; dnsmasq), on a
RabbitMQ virtual host of their own, every host object under a random prefix. As a fresh
project's member, through the gateway, the steps of ``tests/e2e/tenant.py``:

    network, subnet and router (external gateway) -> ICMP rule -> key pair -> volume
    -> two stackling-tiny servers to ACTIVE -> DHCP and pings in their consoles
    -> the volume attached and written by a guest -> a floating IP reachable from a
    namespace on the external network -> everything deleted -> nothing left on the host

Prints each step's wall time and the total, then one JSON line of the figures. The cloud
is removed afterwards (also on failure) and whatever it left on the host is reported.
Exit status 0 when the scenario ran, 1 when a step failed, 2 when the host cannot run it.

    python -m bench.e2e_bench        # make bench-e2e
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from cloud import (  # noqa: E402  (the e2e helpers live beside the tests)
    GUEST_TIMEOUT_S,
    Cloud,
    assert_host_clean,
    assert_project_empty,
    drop_client,
    external_client,
    flavor_of,
    ping,
    run_all,
    start_cloud,
    tiny_image_of,
    wait_until,
)
from tenant import (  # noqa: E402
    OUTSIDE_HOST,
    Steps,
    Tenant,
    entered,
    external_network,
    guest_script,
    new_public_key,
    pattern,
)

from network_svc.drivers.names import Names  # noqa: E402


class LogDirs:
    """What ``start_cloud`` asks of pytest's tmp_path_factory: a directory to keep logs."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def mktemp(self, name: str) -> Path:
        self.made.append(Path(tempfile.mkdtemp(prefix=f"e2e-bench-{name}-")))
        return self.made[-1]


def scenario(cloud: Cloud, image: str, flavor: str, steps: Steps) -> None:
    """The tenant's steps, each timed; everything made is deleted, also on failure."""
    octet = 100 + secrets.randbelow(100)
    base = f"10.{octet}.1"
    ips, gateway = (f"{base}.21", f"{base}.22"), f"{base}.1"
    data = pattern()
    undo: list[Any] = []
    tenant = Tenant(cloud, undo)
    try:
        ext = external_network(cloud, f"10.{octet}.254.0/24", undo)
        steps.done("external network (admin)")
        tenant.network(f"{base}.0/24", pool=(100, 200), external=ext, name="bench-net")
        steps.done("network, subnet, router")
        tenant.allow_icmp()
        steps.done("security group rule")
        key = new_public_key(f"bench-{cloud.lab.prefix}")
        tenant.keypair("bench", key)
        steps.done("key pair")
        tenant.volume()
        steps.done("volume create")
        for name, ip, peer in (("vm0", *ips), ("vm1", *reversed(ips))):
            script = guest_script(
                wait_for=peer, answer=[peer, gateway], away=[], key=key, pattern=data
            )
            tenant.boot(name, image, flavor, ip, script, key_name="bench")
        vm0, vm1 = tenant.servers
        for sid in tenant.servers:
            tenant.active(sid)
        steps.done("two servers to ACTIVE")
        for sid, ip, peer in ((vm0, *ips), (vm1, *reversed(ips))):
            marks = (f"stackling-guest: ip {ip}/24", f"e2e: ping {peer} ok",
                     f"e2e: ping {gateway} ok", "e2e: key present")  # fmt: skip
            tenant.console_until(sid, *marks, timeout=GUEST_TIMEOUT_S)
        steps.done("DHCP and pings in consoles")
        tenant.attach(vm0)
        tenant.console_until(vm0, f"e2e: wrote {data}", timeout=GUEST_TIMEOUT_S)
        steps.done("volume attached and written")
        fip = tenant.floating_ip(ext, tenant.port_of(vm0))
        undo.append(lambda: drop_client(cloud.lab))
        bridge = Names(cloud.lab.prefix).bridge(ext)
        outside = external_client(cloud.lab, bridge, f"10.{octet}.254.{OUTSIDE_HOST}/24")
        address = fip["floating_ip_address"]
        wait_until(f"ping {address} from outside", lambda: ping(outside, address), 30)
        steps.done("floating IP reachable")
        tenant.detach(vm0)
        run_all(undo)
        undo.clear()
        steps.done("delete all")
    finally:
        run_all(undo)
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    steps.done("host clean")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    logs = LogDirs()
    began = time.monotonic()
    steps: Steps | None = None
    cloud_up = 0.0
    failure: str | None = None
    try:
        cloud_gen = start_cloud(logs)  # type: ignore[arg-type]  # only its mktemp is used
        with entered(cloud_gen) as cloud:
            with entered(tiny_image_of(cloud)) as image, entered(flavor_of(cloud)) as flavor:
                cloud_up = round(time.monotonic() - began, 2)
                steps = Steps()
                try:
                    scenario(cloud, image, flavor, steps)
                except Exception:
                    failure = traceback.format_exc()
    except pytest.skip.Exception as exc:
        print(f"bench-e2e: this host cannot run the cloud: {exc.msg}", file=sys.stderr)
        return 2
    except Exception:
        failure = failure or traceback.format_exc()
    if failure:
        print(failure, file=sys.stderr)
        print(f"bench-e2e: failed; the stack's logs are in {logs.made}", file=sys.stderr)
    else:
        for made in logs.made:
            shutil.rmtree(made, ignore_errors=True)
    times = steps.times if steps else {}
    total = round(sum(times.values()), 2)
    width = max((len(k) for k in times), default=10)
    print(f"{'cloud up (stack, agents, image, flavor)':<{width}}  {cloud_up:7.2f} s")
    for name, secs in times.items():
        print(f"{name:<{width}}  {secs:7.2f} s")
    print(f"{'total (the scenario)':<{width}}  {total:7.2f} s")
    figures = {
        "bench": "e2e",
        "ok": failure is None,
        "cloud_up_s": cloud_up,
        "steps_s": times,
        "total_s": total,
        "wall_s": round(time.monotonic() - began, 2),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))
    return 0 if failure is None else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
