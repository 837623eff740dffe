"""Stackling's processes on this machine, started from their console scripts, for e2e tests.

    stack = Stack(tmp_path)                    # gateway, network, volume and compute
    stack.start(); stack.wait_ready()          # every /readyz answers 200
    Stack(lab.root, (*SERVICES, *AGENTS), env=lab.env())  # and the three agents
    stack.url("gateway")                       # http://127.0.0.1:<free port>
    stack.kill("network")                      # one process gone (SIGKILL)
    stack.start_one("network")                 # and back
    stack.pause("network"); stack.resume("network")   # SIGSTOP, SIGCONT
    stack.stop()                               # SIGTERM, then SIGKILL; exit codes by name
    Stack(tmp_path, (*SERVICES, replica("compute", 2)))   # a second compute-api, "compute.2"

    with running_stack(tmp_path) as stack:     # started, ready, always stopped
        admin = IdentityAdmin(stack.url("gateway"), stack.admin_password)
        member = admin.add_user("alice", project_id, "member")    # a Caller with a real token
    Callers(admin=..., member_a=..., reader_a=..., member_b=...)   # the e2e ``callers`` fixture

The gateway is pointed at the services the stack runs (``GATEWAY_*_URLS``: every replica
of each) and at any ``backends`` given, under a known admin and demo password. A replica
(``compute.2``) is one more process of a service, on a port of its own and on the same
database, topic and broker as the first; ``stack.kill("compute.2")`` kills only it.
Every process shares ``data_dir`` (one SQLite file per service, and the identity key pair
unless ``env`` moves it) and the machine's RabbitMQ (or a virtual host of its own:
``broker_vhost``; or any broker ``STACKLING_AMQP_URL`` in ``env`` names).

With the agents, everything they make on the host carries a ``HostLab``'s prefix
(``HostLab.env()``): network-agent's bridges, namespaces and chains, compute-agent's
libvirt domains and instances directory, volume-agent's files and iSCSI targets; all the
stack's processes take the lab's host name. ``lab.leftovers()`` lists what is still there,
``lab.sweep()`` removes it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import libvirt

from common_rpc.testing import free_port
from network_svc.drivers.linux import priv
from network_svc.drivers.linux.sweep import leftovers as net_leftovers
from network_svc.drivers.linux.sweep import sweep as net_sweep

BIN = Path(sys.executable).parent
# name -> (console script, settings prefix); the gateway's backends are the other three.
SERVICES = {
    "gateway": ("stackling-gateway", "GATEWAY"),
    "network": ("network-api", "NETWORK"),
    "volume": ("volume-api", "VOLUME"),
    "compute": ("compute-api", "COMPUTE"),
}
BACKENDS = ("compute", "network", "volume")
REPLICA_SEP = "."
# Per-process settings of the calling shell (a GATEWAY_DB_URL, a NETWORK_PORT) are not
# passed on: the stack configures its processes alone. Shared STACKLING_* ones are.
_OWN_PREFIXES = tuple(f"{prefix}_" for _script, prefix in SERVICES.values())
# Agents: no port of their own; they take their service's settings (its prefix).
AGENTS = {
    "network-agent": "network-agent",
    "compute-agent": "compute-agent",
    "volume-agent": "volume-agent",
}
LIBVIRT_URI = "qemu:///system"
TGTADM = ["tgtadm", "--lld", "iscsi", "--mode", "target"]
STOP_GRACE_S = 15.0
RABBITMQCTL_TIMEOUT_S = 60


def replica(service: str, index: int) -> str:
    """The process name of a service's ``index``-th replica (the first is the service's name)."""
    return service if index == 1 else f"{service}{REPLICA_SEP}{index}"


def service_of(name: str) -> str:
    """The service (or agent) a process name runs: ``compute.2`` runs ``compute``."""
    return name.split(REPLICA_SEP, 1)[0]


class Stack:
    """Some of the four processes (and replicas), each on a free port, logs in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        names: Iterable[str] = SERVICES,
        *,
        backends: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.names = tuple(names)
        unknown = {service_of(n) for n in self.names} - set(SERVICES) - set(AGENTS)
        assert not unknown, f"no such process: {sorted(unknown)}"
        assert len(set(self.names)) == len(self.names), f"a name twice: {self.names}"
        self.ports = {name: free_port() for name in self.names if service_of(name) in SERVICES}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.admin_password = secrets.token_urlsafe(12)
        self.demo_password = secrets.token_urlsafe(12)
        # Service URLs the gateway forwards to: the stack's own replicas, or the one given.
        self.backends: dict[str, list[str]] = {}
        for name in self.ports:
            if service_of(name) in BACKENDS:
                self.backends.setdefault(service_of(name), []).append(self.url(name))
        self.backends.update({name: [url] for name, url in (backends or {}).items()})
        self.env = dict(env or {})

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def replicas(self, service: str) -> list[str]:
        """The names of the processes that run ``service``, the first one first."""
        return [name for name in self.names if service_of(name) == service]

    def environment(self, name: str | None = None) -> dict[str, str]:
        """Every process's settings; with ``name``, its own port for its service."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        env.update(STACKLING_DATA_DIR=str(self.data_dir), STACKLING_LOG_JSON="true")
        for process, port in reversed(self.ports.items()):  # the first replica wins
            env[f"{SERVICES[service_of(process)][1]}_PORT"] = str(port)
        if name is not None and name in self.ports:
            env[f"{SERVICES[service_of(name)][1]}_PORT"] = str(self.ports[name])
        if "gateway" in self.names:
            env["GATEWAY_PUBLIC_URL"] = self.url("gateway")
            env["GATEWAY_ADMIN_PASSWORD"] = self.admin_password
            env["GATEWAY_DEMO_PASSWORD"] = self.demo_password
            for backend in BACKENDS:
                env[f"GATEWAY_{backend.upper()}_URLS"] = json.dumps(self.backends.get(backend, []))
        env.update(self.env)
        return env

    def start(self) -> None:
        """The APIs, then (once they are ready) the agents.

        An agent's first call goes to its API's queue, which the API declares: sent
        before, it would be dropped, and the agent's first reconcile lost.
        """
        for name in self.names:
            if name in self.ports:
                self.start_one(name)
        agents = [name for name in self.names if name not in self.ports]
        if agents:
            self.wait_ready()
            for name in agents:
                self.start_one(name)

    def start_one(self, name: str) -> None:
        """Start (or restart, after ``kill``) one process; its log is appended to."""
        service = service_of(name)
        argv = [str(BIN / (SERVICES[service][0] if service in SERVICES else AGENTS[service]))]
        with open(self.log_file(name), "ab") as log:
            self.procs[name] = subprocess.Popen(
                argv, env=self.environment(name), stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every API answers ``/readyz`` with 200 (its database and broker are up).

        Agents have no HTTP side: they only have to be running (the tests that need them
        wait for their heartbeats through the admin APIs).
        """
        deadline = time.monotonic() + timeout
        waiting = set(self.procs) & set(self.ports)
        for name in set(self.procs) - waiting:
            assert self.procs[name].poll() is None, f"{name} exited:\n{self.log(name)}"
        with httpx.Client(timeout=1) as http:
            while waiting:
                for name in sorted(waiting):
                    assert self.procs[name].poll() is None, f"{name} exited:\n{self.log(name)}"
                    try:
                        if http.get(f"{self.url(name)}/readyz").status_code == 200:
                            waiting.discard(name)
                    except httpx.HTTPError:
                        pass
                if waiting:
                    assert time.monotonic() < deadline, f"not ready: {sorted(waiting)}"
                    time.sleep(0.1)

    def log_file(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    def log(self, name: str) -> str:
        return self.log_file(name).read_text(errors="replace")[-3000:]

    def kill(self, name: str) -> None:
        """Stop one process at once, as a crash would."""
        proc = self.procs[name]
        proc.kill()
        proc.wait(STOP_GRACE_S)

    def pause(self, name: str) -> None:
        """Freeze one process (SIGSTOP): alive for the broker and the kernel, serving nothing."""
        self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def stop(self, grace_s: float = STOP_GRACE_S) -> dict[str, int | None]:
        """SIGTERM to all, then SIGKILL to any still running after ``grace_s``.

        Returns each exit code; None for one that had to be killed.
        """
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes[name] = None
        return codes


@contextmanager
def running_stack(
    data_dir: Path,
    names: Iterable[str] = SERVICES,
    *,
    backends: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """A started and ready ``Stack``, stopped on the way out whatever happened."""
    stack = Stack(data_dir, names, backends=backends, env=env)
    try:
        stack.start()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


@contextmanager
def broker_vhost(name: str, base_url: str = "amqp://guest:guest@127.0.0.1:5672/") -> Iterator[str]:
    """A RabbitMQ virtual host of the machine's node for one stack, deleted afterwards.

    The services' topics (``network``, ``compute``...) are fixed names: stacks of other
    runs on the same broker would otherwise take each other's requests and heartbeats.
    """
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", name], check=True, timeout=RABBITMQCTL_TIMEOUT_S)
    try:
        subprocess.run(
            [*ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=True,
            timeout=RABBITMQCTL_TIMEOUT_S,
        )
        yield base_url.rstrip("/") + "/" + name
    finally:
        subprocess.run([*ctl, "delete_vhost", name], check=False, timeout=RABBITMQCTL_TIMEOUT_S)


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class HostLab:
    """What a stack's agents make on this host, all named with one random prefix.

    ``prefix`` is 4 characters: network-agent fits its names in the kernel's 15 (a VXLAN
    device is ``<prefix>vxlan-<vni>``, so VNIs of 5 digits, from a random range no other
    run on the host is likely to use). ``root`` is the stack's data directory, readable
    by dnsmasq and QEMU (they drop root), and removed by ``sweep``.
    """

    prefix: str
    root: Path
    vni_base: int

    @classmethod
    def create(cls) -> HostLab:
        prefix = "e" + "".join(secrets.choice(_ALNUM) for _ in range(3))
        root = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}-"))
        root.chmod(0o755)
        return cls(prefix, root, 10000 + secrets.randbelow(890) * 100)

    @property
    def host(self) -> str:
        return f"e2e-{self.prefix}"

    @property
    def domain_prefix(self) -> str:
        return f"{self.prefix}-"

    @property
    def iqn_prefix(self) -> str:
        return f"iqn.2010-10.org.stackling.{self.prefix}"

    @property
    def instances_dir(self) -> Path:
        return self.root / "instances"

    @property
    def network_state_dir(self) -> Path:
        return self.root / "network-agent"

    def env(self) -> dict[str, str]:
        """Settings of all the stack's processes: one host name, the agents' prefixes."""
        return {
            "STACKLING_HOST": self.host,
            "NETWORK_VXLAN_RANGE": f"{self.vni_base}-{self.vni_base + 99}",
            "NETWORK_AGENT_NAME_PREFIX": self.prefix,
            "NETWORK_AGENT_LOCAL_IP": "127.0.0.1",
            "NETWORK_AGENT_STATE_DIR": str(self.network_state_dir),
            "COMPUTE_AGENT_LIBVIRT_URI": LIBVIRT_URI,
            "COMPUTE_AGENT_VIRT_TYPE": "qemu",
            "COMPUTE_AGENT_DOMAIN_PREFIX": self.domain_prefix,
            "COMPUTE_AGENT_INSTANCES_DIR": str(self.instances_dir),
            "VOLUME_AGENT_TARGET_HELPER": "tgt",
            "VOLUME_AGENT_NAME_PREFIX": self.prefix,
            "VOLUME_AGENT_IQN_PREFIX": self.iqn_prefix,
            "VOLUME_AGENT_STORAGE_DIR": str(self.root / "volumes"),
        }

    def leftovers(self) -> dict[str, list[str]]:
        """Everything with the prefix still on the host (the image cache ``_base`` aside)."""
        files = []
        if self.instances_dir.exists():
            files = sorted(p.name for p in self.instances_dir.iterdir() if p.name != "_base")
        return {
            "domains": _domains(self.domain_prefix),
            "disks": files,
            # links, netns, chains (rules and member sets), dnsmasq: network-svc's own list
            **net_leftovers(self.prefix, self.network_state_dir),
            "targets": _targets(self.iqn_prefix),
            "chap accounts": [a for a in _tgt_accounts() if a.startswith(self.prefix)],
        }

    def sweep(self) -> None:
        """Remove anything with the prefix, by name, then the data directory; never raises."""
        _sweep_domains(self.domain_prefix)
        _sweep_targets(self.iqn_prefix)
        for account in _tgt_accounts():
            if account.startswith(self.prefix):
                priv.run(
                    ["tgtadm", "--lld", "iscsi", "--mode", "account", "--op", "delete",
                     "--user", account],
                    timeout=15,
                    check=False,
                )  # fmt: skip
        with suppress(Exception):
            net_sweep(self.prefix, self.network_state_dir)
        shutil.rmtree(self.root, ignore_errors=True)


def _tgt_targets() -> dict[int, str]:
    """tid -> IQN of every target of the default tgtd."""
    out = priv.run([*TGTADM, "--op", "show"], timeout=15, check=False)
    targets = {}
    for line in out.splitlines():
        if line.startswith("Target "):
            tid, iqn = line.removeprefix("Target ").split(": ", 1)
            targets[int(tid)] = iqn.strip()
    return targets


def _tgt_accounts() -> list[str]:
    out = priv.run(["tgtadm", "--lld", "iscsi", "--mode", "account", "--op", "show"], check=False)
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def _targets(iqn_prefix: str) -> list[str]:
    return sorted(iqn for iqn in _tgt_targets().values() if iqn.startswith(iqn_prefix))


def _sweep_targets(iqn_prefix: str) -> None:
    for tid, iqn in _tgt_targets().items():
        if iqn.startswith(iqn_prefix):
            priv.run(
                [*TGTADM, "--op", "delete", "--force", "--tid", str(tid)], timeout=15, check=False
            )


def _domains(prefix: str) -> list[str]:
    conn = libvirt.open(LIBVIRT_URI)
    try:
        return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix))
    finally:
        conn.close()


def _sweep_domains(prefix: str) -> None:
    try:
        conn = libvirt.open(LIBVIRT_URI)
    except libvirt.libvirtError:
        return
    try:
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(prefix):
                with suppress(libvirt.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
        with suppress(libvirt.libvirtError):
            for secret in conn.listAllSecrets(0):
                if (secret.usageID() or "").startswith(prefix):
                    secret.undefine()
    finally:
        conn.close()


@dataclass(frozen=True)
class Caller:
    """A user with a project-scoped token the gateway issued."""

    name: str
    user_id: str
    password: str
    project_id: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


@dataclass(frozen=True)
class Callers:
    """The callers the policy matrix is about: two projects, three roles."""

    admin: Caller  # admin on the bootstrap "admin" project
    member_a: Caller
    reader_a: Caller
    member_b: Caller

    @property
    def project_a(self) -> str:
        return self.member_a.project_id

    @property
    def project_b(self) -> str:
        return self.member_b.project_id

    def all(self) -> dict[str, Caller]:
        return {
            "admin": self.admin,
            "member_a": self.member_a,
            "reader_a": self.reader_a,
            "member_b": self.member_b,
        }


class IdentityAdmin:
    """The gateway's Identity v3 API as its bootstrapped admin uses it (synchronous httpx)."""

    def __init__(self, gateway_url: str, admin_password: str, admin_user: str = "admin") -> None:
        self.http = httpx.Client(base_url=f"{gateway_url}/identity/v3", timeout=10)
        try:
            self.admin = self.login(admin_user, admin_password, project_name="admin")
            roles = self.call("GET", "/roles", expect=200).json()["roles"]
        except BaseException:
            self.http.close()
            raise
        self.role_ids = {role["name"]: role["id"] for role in roles}

    def close(self) -> None:
        self.http.close()

    def issue(
        self,
        username: str,
        password: str,
        *,
        project_id: str | None = None,
        project_name: str | None = None,
    ) -> httpx.Response:
        """``POST /auth/tokens`` with a password, scoped to a project by id or by name."""
        project: dict[str, Any] = (
            {"id": project_id}
            if project_id is not None
            else {"name": project_name, "domain": {"id": "default"}}
        )
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": username,
                            "domain": {"id": "default"},
                            "password": password,
                        }
                    },
                },
                "scope": {"project": project},
            }
        }
        return self.http.post("/auth/tokens", json=body)

    def login(
        self,
        username: str,
        password: str,
        *,
        project_id: str | None = None,
        project_name: str | None = None,
    ) -> Caller:
        reply = self.issue(username, password, project_id=project_id, project_name=project_name)
        assert reply.status_code == 201, reply.text
        token = reply.json()["token"]
        roles = {role["name"] for role in token["roles"]}
        role = next(r for r in ("admin", "member", "reader") if r in roles)
        return Caller(
            name=username,
            user_id=token["user"]["id"],
            password=password,
            project_id=token["project"]["id"],
            role=role,
            token=reply.headers["X-Subject-Token"],
        )

    def call(self, method: str, path: str, *, expect: int, json: Any = None) -> httpx.Response:
        """An identity call with the admin's token; asserts the status."""
        reply = self.http.request(method, path, json=json, headers=self.admin.headers)
        assert reply.status_code == expect, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply

    def create_project(self, name: str) -> str:
        reply = self.call("POST", "/projects", json={"project": {"name": name}}, expect=201)
        return str(reply.json()["project"]["id"])

    def add_user(self, name: str, project_id: str, role: str) -> Caller:
        """A new user holding ``role`` on ``project_id``, logged in there."""
        password = secrets.token_urlsafe(12)
        user = {"name": name, "password": password, "default_project_id": project_id}
        reply = self.call("POST", "/users", json={"user": user}, expect=201)
        user_id = reply.json()["user"]["id"]
        grant = f"/projects/{project_id}/users/{user_id}/roles/{self.role_ids[role]}"
        self.call("PUT", grant, expect=204)
        return self.login(name, password, project_id=project_id)
