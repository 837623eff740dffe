"""docker-compose.yml run for real on this machine, one compose project per test module.

    lab = ComposeLab.create()              # prefix k???: every host object the agents make
    project = Project(lab, shape="volume")  # deploy/compose/volume.env: the gateway's shape
    project.up("gateway", "volume-api", "volume-agent")   # and waits until all are healthy
    project.url("gateway")                 # http://127.0.0.1:<published port>
    project.stop("rabbitmq"); project.start("rabbitmq")
    project.destroy(logs_dir)              # logs kept, containers/networks/volumes removed

Each project has a name of its own (``stk<prefix>``), so its containers, network and
volumes are its own; the gateway and the broker are published on free loopback ports (the
machine's RabbitMQ and ``make run`` keep theirs). The agents run on the host's network
and drive its kernel, libvirtd and tgtd: every name they make carries the lab's prefix
(``HostLab.env``: the agents' name, domain and IQN prefixes, the host name, a VXLAN range
of its own), and the state directory (images, instances, volumes, the network agent's
files) is the lab's temporary root, mounted at the same path in the containers, so that
``lab.leftovers()`` and ``lab.sweep()`` of the e2e suite find and remove what they made.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud import boot, delete_servers, need_host, settle, status, wait_until
from stack import HostLab

from common_rpc.chassis.identity import generate_keypair
from common_rpc.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SHAPES = ROOT / "deploy" / "compose"
SERVICE_IMAGES = (
    "gateway", "compute-api", "network-api", "volume-api",
    "compute-agent", "network-agent", "volume-agent",
)  # fmt: skip
# Every container's log of a project, kept after it is gone (build/ is not in git).
LOGS_DIR = ROOT / "build" / "compose-logs"
HEALTHY_S = 180.0
COMPOSE_TIMEOUT_S = 600
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# Settings of the calling shell that would change the project (the file reads them).
_PASSED_ON = ("PATH", "HOME", "LANG", "DOCKER_HOST")


@dataclass(frozen=True)
class ComposeLab(HostLab):
    """A ``HostLab`` whose prefix starts with ``k``: no other suite's does (the e2e suite's
    start with ``e``; the services' own tests use ``b``, ``ct``, ``v``-``z``)."""

    @classmethod
    def create(cls) -> ComposeLab:
        prefix = "k" + "".join(secrets.choice(_ALNUM) for _ in range(3))
        root = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}-"))
        root.chmod(0o755)  # dnsmasq and QEMU read below it as users of their own
        return cls(prefix, root, 10000 + secrets.randbelow(890) * 100)

    @property
    def host(self) -> str:
        return f"compose-{self.prefix}"


def images_missing(tag: str = "latest") -> list[str]:
    """Service images of docker-compose.yml not built yet (``make images`` builds them)."""
    missing = []
    for name in SERVICE_IMAGES:
        probe = ["docker", "image", "inspect", f"stackling/{name}:{tag}"]
        if subprocess.run(probe, capture_output=True, timeout=60).returncode != 0:
            missing.append(name)
    return missing


class Project:
    """One compose project of docker-compose.yml with the lab's settings."""

    def __init__(
        self,
        lab: ComposeLab,
        shape: str | None = None,
        env: dict[str, str] | None = None,
        profiles: tuple[str, ...] = (),
    ) -> None:
        self.lab = lab
        self.profiles = profiles
        self.name = f"stk{lab.prefix}"
        self.shape = shape
        self.data_dir = lab.root
        self.gateway_port = free_port()
        self.broker_port = free_port()
        self.admin_password = secrets.token_urlsafe(12)
        self.demo_password = secrets.token_urlsafe(12)
        self.extra = dict(env or {})
        generate_keypair(lab.root / "keys")

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.broker_port}/"

    def url(self, name: str) -> str:
        assert name == "gateway", f"only the gateway is published, not {name}"
        return f"http://127.0.0.1:{self.gateway_port}"

    def env(self) -> dict[str, str]:
        """What docker-compose reads: the lab's prefixes, paths and ports."""
        lab = self.lab.env()
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ON}
        env |= {
            "STACKLING_STATE_DIR": str(self.lab.root),
            "STACKLING_KEYS_DIR": str(self.lab.root / "keys"),
            "STACKLING_GATEWAY_PUBLISH": f"127.0.0.1:{self.gateway_port}",
            "STACKLING_PUBLIC_URL": self.url("gateway"),
            "STACKLING_BROKER": f"127.0.0.1:{self.broker_port}",
            "STACKLING_HOST": self.lab.host,
            "GATEWAY_ADMIN_PASSWORD": self.admin_password,
            "GATEWAY_DEMO_PASSWORD": self.demo_password,
            "NETWORK_VXLAN_RANGE": lab["NETWORK_VXLAN_RANGE"],
            "NETWORK_AGENT_NAME_PREFIX": lab["NETWORK_AGENT_NAME_PREFIX"],
            "NETWORK_AGENT_RECONCILE_INTERVAL": "10",
            "COMPUTE_AGENT_DOMAIN_PREFIX": lab["COMPUTE_AGENT_DOMAIN_PREFIX"],
            "COMPUTE_AGENT_VIRT_TYPE": "qemu",
            "COMPUTE_AGENT_SHUTDOWN_TIMEOUT": "0",
            "COMPUTE_AGENT_RECONCILE_INTERVAL": "20",
            "VOLUME_AGENT_TARGET_HELPER": "tgt",
            "VOLUME_AGENT_NAME_PREFIX": lab["VOLUME_AGENT_NAME_PREFIX"],
            "VOLUME_AGENT_IQN_PREFIX": lab["VOLUME_AGENT_IQN_PREFIX"],
        }
        return env | self.extra

    def compose(
        self, *args: str, check: bool = True, timeout: float = COMPOSE_TIMEOUT_S, **env: str
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", self.name]
        if self.shape:
            argv += ["--env-file", str(SHAPES / f"{self.shape}.env")]
        for profile in self.profiles:
            argv += ["--profile", profile]
        done = subprocess.run(
            [*argv, *args],
            cwd=ROOT,
            env=self.env() | env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stderr[-4000:]}"
        return done

    def up(self, *services: str, **env: str) -> None:
        """``up -d`` (of ``services``, or all), then every started service healthy."""
        self.compose("up", "-d", "--no-build", *services, **env)
        self.wait_healthy(services or None)

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).stdout.split()

    def state(self, service: str) -> str:
        """``running (healthy)``, ``running``, ``exited (0)``, ... of the service's container."""
        ids = self.containers(service)
        if not ids:
            return "absent"
        fmt = "{{.State.Status}}{{if .State.Health}} ({{.State.Health.Status}}){{end}}"
        out = subprocess.run(
            ["docker", "inspect", "-f", fmt, ids[0]], capture_output=True, text=True, timeout=60
        )
        return out.stdout.strip() or "absent"

    def running(self) -> set[str]:
        """Services with a running container."""
        out = self.compose("ps", "--services", "--filter", "status=running").stdout
        return set(out.split())

    def wait_healthy(
        self, services: Iterable[str] | None = None, timeout: float = HEALTHY_S
    ) -> None:
        """Until every (given or running) service runs, and is healthy where it has a check."""
        deadline = time.monotonic() + timeout
        names = set(services) if services else self.running()
        names.discard("prepare")
        while True:
            states = {name: self.state(name) for name in sorted(names)}
            waiting = {n: s for n, s in states.items() if s not in ("running", "running (healthy)")}
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy after {timeout:.0f}s: {waiting}\n{self.logs()}")
            time.sleep(1)

    def kill(self, service: str) -> None:
        """SIGKILL, as a crash would."""
        self.compose("kill", service)

    def stop(self, service: str) -> None:
        self.compose("stop", "-t", "10", service)

    def start(self, service: str) -> None:
        self.compose("start", service)
        self.wait_healthy([service])

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False).stdout

    def catalog_types(self, user: str, password: str, project_name: str) -> set[str]:
        """The service types of the catalog a token of ``user`` comes with."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": {"id": "default"},
                                          "password": password}},
                },
                "scope": {"project": {"name": project_name, "domain": {"id": "default"}}},
            }
        }  # fmt: skip
        url = f"{self.url('gateway')}/identity/v3/auth/tokens"
        reply = httpx.post(url, json=body, timeout=10)
        assert reply.status_code == 201, reply.text
        return {entry["type"] for entry in reply.json()["token"]["catalog"]}

    def psql(self, database: str, sql: str) -> str:
        """One query in the project's PostgreSQL, its rows as psql prints them unaligned."""
        done = self.compose(
            "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", database, "-tAc", sql
        )
        return done.stdout.strip()

    def destroy(self, logs_dir: Path) -> dict[str, list[str]]:
        """Logs saved in ``logs_dir``; containers, the network and the volumes removed.

        Returns what of the project Docker still has (empty lists when all went)."""
        logs = self.compose("logs", "--no-color", "--timestamps", check=False).stdout
        (logs_dir / f"{self.name}.log").write_text(logs)
        self.compose("down", "-v", "--remove-orphans", "-t", "10", check=False)
        label = f"label=com.docker.compose.project={self.name}"
        left = {}
        for kind in ("container", "network", "volume"):
            argv = ["docker", kind, "ls", "-q", "--filter", label]
            if kind == "container":
                argv = ["docker", "ps", "-aq", "--filter", label]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
            left[kind + "s"] = out.split()
        return left


# What the e2e cloud gives its compute host (start_cloud), and its faster deadlines.
CLOUD_ENV = {
    "COMPUTE_BUILD_TIMEOUT_S": "60",
    "COMPUTE_RPC_TIMEOUT_S": "10",
    "COMPUTE_AGENT_CAPACITY_VCPUS": "4",
    "COMPUTE_AGENT_CAPACITY_RAM_MB": "2048",
    "COMPUTE_AGENT_CAPACITY_DISK_GB": "20",
}


def compose_project(
    tmp_path_factory: pytest.TempPathFactory,
    shape: str | None = None,
    env: dict[str, str] | None = None,
    profiles: tuple[str, ...] = (),
) -> Iterator[Project]:
    """A project (not started) on a fresh lab; on the way out, whatever happened: its
    logs kept in build/compose-logs/<project>.log, its containers, network and volumes
    removed, and nothing with the lab's prefix left on the host."""
    need_host()
    missing = images_missing()
    if missing:
        pytest.fail(f"images not built: {missing} (run `make images`)")
    lab = ComposeLab.create()
    project = Project(lab, shape, env, profiles)
    logs = LOGS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    docker_left: dict[str, list[str]] = {}
    try:
        try:
            yield project
            settle(lab)  # what the tests deleted leaves the host at the agents' reconcile
        finally:
            docker_left = project.destroy(logs)
    finally:
        host_left = lab.leftovers()
        lab.sweep()
    assert docker_left == {k: [] for k in docker_left}, f"left by Docker: {docker_left}"
    assert host_left == {k: [] for k in host_left}, f"left on the host: {host_left}"


def boot_rate(cloud: Any, image: str, flavor: str, net_id: str, count: int) -> float:
    """Boots per minute: ``count`` servers posted at once, until every one is ACTIVE
    (the control plane's work: claims, ports, the agents' wiring and domain start);
    then deleted."""
    servers: list[str] = []
    began = time.monotonic()
    try:
        for index in range(count):
            servers.append(boot(cloud, f"rate-{index}", image, flavor, networks=[{"uuid": net_id}]))
        for sid in servers:
            wait_until(f"{sid} ACTIVE", lambda sid=sid: status(cloud, sid, "ACTIVE"), 180, 0.5)
        return count * 60.0 / (time.monotonic() - began)
    finally:
        delete_servers(cloud, servers)


def rpc_p50(url: str, queue_type: str, seconds: float = 6.0) -> float:
    """Median round trip (ms) of a common-rpc call, one in flight, through the broker at
    ``url``, on a queue of ``queue_type``: ``bench.aio_server`` and ``bench.client``."""
    topic = f"compose-bench-{secrets.token_hex(4)}"
    common = ["--url", url, "--topic", topic, "--queue-type", queue_type]
    python = [sys.executable, "-m"]
    server = subprocess.Popen(
        [*python, "bench.aio_server", "common", *common],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.run(
            [*python, "bench.client", "common", *common],
            cwd=ROOT,
            input=f"warmup 1 2\nmeasure 1 {seconds}\nreport\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        server.terminate()
        server.wait(30)
    report = json.loads(client.stdout.strip().splitlines()[-1])
    found = re.findall(r'"p50_ms": ([0-9.]+)', json.dumps(report))
    assert found, report
    return float(found[0])
