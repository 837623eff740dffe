"""Stackling's processes on this machine, started from their console scripts, for e2e tests.

    stack = Stack(tmp_path)                    # gateway, network, volume and compute
    stack.start(); stack.wait_ready()          # every /readyz answers 200
    stack.url("gateway")                       # http://127.0.0.1:<free port>
    stack.kill("network")                      # one process gone (SIGKILL)
    stack.stop()                               # SIGTERM, then SIGKILL; exit codes by name

    with running_stack(tmp_path) as stack:     # started, ready, always stopped
        admin = IdentityAdmin(stack.url("gateway"), stack.admin_password)
        member = admin.add_user("alice", project_id, "member")    # a Caller with a real token
    Callers(admin=..., member_a=..., reader_a=..., member_b=...)   # the e2e ``callers`` fixture

The gateway is pointed at the services the stack runs (``GATEWAY_*_URLS``) and at any
``backends`` given, under a known admin and demo password. Every process shares
``data_dir`` (one SQLite file each, and the identity key pair unless ``env`` moves it)
and the machine's RabbitMQ.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common_rpc.testing import free_port

BIN = Path(sys.executable).parent
# name -> (console script, settings prefix); the gateway's backends are the other three.
SERVICES = {
    "gateway": ("stackling-gateway", "GATEWAY"),
    "network": ("network-api", "NETWORK"),
    "volume": ("volume-api", "VOLUME"),
    "compute": ("compute-api", "COMPUTE"),
}
BACKENDS = ("compute", "network", "volume")
# Per-process settings of the calling shell (a GATEWAY_DB_URL, a NETWORK_PORT) are not
# passed on: the stack configures its processes alone. Shared STACKLING_* ones are.
_OWN_PREFIXES = tuple(f"{prefix}_" for _script, prefix in SERVICES.values())
STOP_GRACE_S = 15.0


class Stack:
    """Some of the four processes, each on a free port, with their logs in ``data_dir``."""

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
        self.ports = {name: free_port() for name in self.names}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.admin_password = secrets.token_urlsafe(12)
        self.demo_password = secrets.token_urlsafe(12)
        # Service URLs the gateway forwards to: the stack's own, then the ones given.
        self.backends = {name: self.url(name) for name in BACKENDS if name in self.names}
        self.backends.update(backends or {})
        self.env = dict(env or {})

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        env.update(STACKLING_DATA_DIR=str(self.data_dir), STACKLING_LOG_JSON="true")
        for name in self.names:
            env[f"{SERVICES[name][1]}_PORT"] = str(self.ports[name])
        if "gateway" in self.names:
            env["GATEWAY_PUBLIC_URL"] = self.url("gateway")
            env["GATEWAY_ADMIN_PASSWORD"] = self.admin_password
            env["GATEWAY_DEMO_PASSWORD"] = self.demo_password
            for name in BACKENDS:
                urls = [self.backends[name]] if name in self.backends else []
                env[f"GATEWAY_{name.upper()}_URLS"] = json.dumps(urls)
        env.update(self.env)
        return env

    def start(self) -> None:
        env = self.environment()
        for name in self.names:
            with open(self.log_file(name), "ab") as log:
                self.procs[name] = subprocess.Popen(
                    [str(BIN / SERVICES[name][0])], env=env, stdout=log, stderr=subprocess.STDOUT
                )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every process answers ``/readyz`` with 200 (its database and broker are up)."""
        deadline = time.monotonic() + timeout
        waiting = set(self.procs)
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
