"""A tenant's whole scenario on the e2e cloud, step by step, for the tests and the bench.

    tenant = Tenant(cloud)                       # a Cloud as one project's member
    tenant.network("10.9.1.0/24", pool=(100, 200), external=ext_id)
    tenant.allow_icmp(); tenant.volume()
    sid = tenant.boot("vm0", image, flavor, ip="10.9.1.21", script=guest_script(...))
    ...
    tenant.undo                                  # run last to first (``run_all``), always

``Tenant`` does what a member does through the gateway and records how to undo each thing.
``EventTap`` reads a member's Server-Sent Events (``/v1/events``) in a thread.
``Cli`` runs the real ``openstack`` client against the gateway with a clouds.yaml for one
member. ``other_project`` makes a second project with a member of its own.
``guest_script`` is the user_data the stackling-tiny guests run: pings that must answer,
the key pair in the config drive, pings to another project that must not answer until
the test plugs a volume, then the volume's pattern.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from cloud import Cloud, call, delete_servers, delete_volume, status, volume_status, wait_until
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from stack import IdentityAdmin

T = TypeVar("T")
OPENSTACK = Path(sys.executable).parent / "openstack"
ACTIVE_S = 120


class Steps:
    """Wall time of each named step, in the order they ran."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.times: dict[str, float] = {}
        self._last = self.started

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.times[name] = round(now - self._last, 2)
        self._last = now

    def total(self) -> float:
        return round(time.monotonic() - self.started, 2)


@dataclasses.dataclass
class Tenant:
    """One project's member doing the scenario; ``undo`` removes what it made."""

    cloud: Cloud
    undo: list[Callable[[], Any]] = dataclasses.field(default_factory=list)
    servers: list[str] = dataclasses.field(default_factory=list)
    net_id: str = ""
    subnet_id: str = ""
    router_id: str = ""
    volume_id: str = ""

    @property
    def http(self) -> httpx.Client:
        return self.cloud.member

    @property
    def project_id(self) -> str:
        return self.cloud.caller.project_id

    @property
    def volumes(self) -> str:
        return f"/volume/v3/{self.project_id}/volumes"

    def network(
        self, cidr: str, pool: tuple[int, int], external: str | None = None, name: str = "net"
    ) -> None:
        """A network and subnet (addresses ``pool`` of the /24); a router to ``external``."""
        body = {"network": {"name": name}}
        self.net_id = call(self.http, "POST", "/network/v2.0/networks", 201, json=body)["network"][
            "id"
        ]
        net_id = self.net_id
        self.undo.append(lambda: self.http.delete(f"/network/v2.0/networks/{net_id}"))
        base = cidr.rsplit(".", 1)[0]
        subnet = {
            "network_id": net_id,
            "cidr": cidr,
            "ip_version": 4,
            "gateway_ip": f"{base}.1",
            "allocation_pools": [{"start": f"{base}.{pool[0]}", "end": f"{base}.{pool[1]}"}],
        }
        reply = call(self.http, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
        self.subnet_id = reply["subnet"]["id"]
        if external is None:
            return
        router = {"name": f"{name}-router", "external_gateway_info": {"network_id": external}}
        reply = call(self.http, "POST", "/network/v2.0/routers", 201, json={"router": router})
        self.router_id = router_id = reply["router"]["id"]
        self.undo.append(lambda: self.http.delete(f"/network/v2.0/routers/{router_id}"))
        path = f"/network/v2.0/routers/{router_id}"
        iface = {"subnet_id": self.subnet_id}
        call(self.http, "PUT", f"{path}/add_router_interface", 200, json=iface)
        self.undo.append(lambda: self.http.put(f"{path}/remove_router_interface", json=iface))

    def dhcp_address(self) -> str:
        """The address of the network's DHCP server (made with the subnet)."""
        params = {"network_id": self.net_id, "device_owner": "network:dhcp"}
        ports = call(self.http, "GET", "/network/v2.0/ports", 200, params=params)["ports"]
        assert len(ports) == 1, ports
        return str(ports[0]["fixed_ips"][0]["ip_address"])

    def allow_icmp(self) -> str:
        """ICMP in from anywhere to the default group: only the wire may stop a ping."""
        groups = call(
            self.http,
            "GET",
            "/network/v2.0/security-groups",
            200,
            params={"project_id": self.project_id, "name": "default"},
        )["security_groups"]
        assert len(groups) == 1, groups
        rule = {
            "security_group_id": groups[0]["id"],
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": "icmp",
        }
        made = call(
            self.http,
            "POST",
            "/network/v2.0/security-group-rules",
            201,
            json={"security_group_rule": rule},
        )["security_group_rule"]
        path = f"/network/v2.0/security-group-rules/{made['id']}"
        self.undo.append(lambda: self.http.delete(path))
        return str(made["id"])

    def keypair(self, name: str, public_key: str) -> dict[str, Any]:
        body = {"keypair": {"name": name, "public_key": public_key}}
        made = call(self.http, "POST", "/compute/v2.1/os-keypairs", 200, json=body)["keypair"]
        self.forget_keypair(name)
        return dict(made)

    def forget_keypair(self, name: str) -> None:
        """Undo: delete the key pair ``name`` (made here or by the CLI)."""
        self.undo.append(lambda: self.http.delete(f"/compute/v2.1/os-keypairs/{name}"))

    def volume(self, size: int = 1) -> str:
        body = {"volume": {"size": size, "name": "data"}}
        self.volume_id = volume_id = call(self.http, "POST", self.volumes, 202, json=body)[
            "volume"
        ]["id"]
        self.undo.append(lambda: delete_volume(self.cloud, volume_id))
        return str(volume_id)

    def boot(self, name: str, image: str, flavor: str, ip: str, script: str, **extra: Any) -> str:
        body = {
            "server": {
                "name": name,
                "imageRef": image,
                "flavorRef": flavor,
                "networks": [{"uuid": self.net_id, "fixed_ip": ip}],
                "user_data": script,
                **extra,
            }
        }
        if not self.servers:
            self.undo.append(lambda: delete_servers(self.cloud, self.servers))
        reply = call(self.http, "POST", "/compute/v2.1/servers", 202, json=body)
        self.servers.append(str(reply["server"]["id"]))
        return self.servers[-1]

    def active(self, server_id: str) -> dict[str, Any]:
        return wait_until(
            f"{server_id} ACTIVE", lambda: status(self.cloud, server_id, "ACTIVE"), ACTIVE_S
        )

    def port_of(self, server_id: str) -> str:
        params = {"device_id": server_id}
        ports = call(self.http, "GET", "/network/v2.0/ports", 200, params=params)["ports"]
        assert len(ports) == 1, ports
        return str(ports[0]["id"])

    def floating_ip(self, external: str, port_id: str) -> dict[str, Any]:
        body = {"floatingip": {"floating_network_id": external, "port_id": port_id}}
        fip = call(self.http, "POST", "/network/v2.0/floatingips", 201, json=body)["floatingip"]
        path = f"/network/v2.0/floatingips/{fip['id']}"
        self.undo.append(lambda: self.http.delete(path))
        return dict(fip)

    def attach(self, server_id: str) -> None:
        wait_until(
            "volume available",
            lambda: volume_status(self.cloud, self.volume_id, "available"),
            60,
        )
        path = f"/compute/v2.1/servers/{server_id}/os-volume_attachments"
        body = {"volumeAttachment": {"volumeId": self.volume_id}}
        call(self.http, "POST", path, 200, json=body)
        assert volume_status(self.cloud, self.volume_id, "in-use")

    def detach(self, server_id: str) -> None:
        path = f"/compute/v2.1/servers/{server_id}/os-volume_attachments/{self.volume_id}"
        call(self.http, "DELETE", path, 202)
        wait_until(
            "volume detached",
            lambda: volume_status(self.cloud, self.volume_id, "available"),
            60,
        )

    def console_until(self, server_id: str, *marks: str, timeout: float) -> str:
        """The console once it shows every mark; fails at once on a guest's own failure."""
        seen = [""]

        def probe() -> str | None:
            out = seen[0] = self.cloud.console(server_id)
            assert "e2e: no volume" not in out, out
            assert "e2e: reached" not in out, out
            return out if all(m in out for m in marks) else None

        try:
            return wait_until(f"{server_id} console: {marks}", probe, timeout, every=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- console:\n{seen[0][-3000:]}") from None


AWAY_LOOP = """echo "e2e: away start"
n=0
while [ ! -b /dev/vdc ] && [ $n -lt 900 ]; do
  for ip in {away}; do
    if ping -c 1 -W 1 $ip >/dev/null 2>&1; then echo "e2e: reached $ip"; fi
  done
  n=$((n + 1))
done
echo "e2e: away done after $n rounds"
"""


def guest_script(
    *,
    wait_for: str,
    answer: list[str],
    away: list[str],
    key: str | None,
    pattern: str,
) -> str:
    """user_data: wait for ``wait_for``; ping ``answer`` (must answer); is ``key`` in the
    config drive; ping ``away`` (must not answer) until a volume is plugged as vdc (vda
    is the root disk, vdb the config drive); read the pattern from it, or write it."""
    blob = key.split()[1] if key else "no-key-asked"
    away_loop = AWAY_LOOP.format(away=" ".join(away)) if away else ""
    script = f"""#!/bin/sh
n=0
until ping -c 1 -W 1 {wait_for} >/dev/null 2>&1; do
  n=$((n + 1)); [ $n -ge 120 ] && break
done
for ip in {" ".join(answer)}; do
  if ping -c 2 -W 2 $ip >/dev/null 2>&1; then echo "e2e: ping $ip ok"
  else echo "e2e: ping $ip failed"; fi
done
if grep -qF "{blob}" /mnt/config/openstack/latest/meta_data.json; then echo "e2e: key present"
else echo "e2e: key absent"; fi
{away_loop}while [ ! -b /dev/vdc ] && [ $n -lt 1200 ]; do sleep 1; n=$((n + 1)); done
[ -b /dev/vdc ] || {{ echo "e2e: no volume"; exit 1; }}
got=$(dd if=/dev/vdc bs={len(pattern)} count=1 2>/dev/null | tr -d '\\000')
if [ "$got" = "{pattern}" ]; then
  echo "e2e: read {pattern}"
else
  printf '%s' "{pattern}" | dd of=/dev/vdc bs={len(pattern)} count=1 conv=fsync 2>/dev/null
  sync
  echo "e2e: wrote {pattern}"
fi
"""
    return base64.b64encode(script.encode()).decode()


OUTSIDE_HOST = 250  # the outside client's host number on the external /24: never pooled


def external_network(cloud: Cloud, cidr: str, undo: list[Callable[[], Any]]) -> str:
    """An external network (the admin's) for routers' gateways and floating IPs.

    Its pool stops below ``OUTSIDE_HOST``, so the outside client's address is never handed
    to a router gateway or a floating IP (a random pick would, now and then)."""
    body = {"network": {"name": f"ext-{cloud.lab.prefix}", "router:external": True}}
    net = call(cloud.admin, "POST", "/network/v2.0/networks", 201, json=body)["network"]
    undo.append(lambda: cloud.admin.delete(f"/network/v2.0/networks/{net['id']}"))
    head = cidr.rsplit(".", 1)[0]
    pool = {"start": f"{head}.2", "end": f"{head}.{OUTSIDE_HOST - 1}"}
    subnet = {"network_id": net["id"], "cidr": cidr, "ip_version": 4, "allocation_pools": [pool]}
    call(cloud.admin, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
    return str(net["id"])


def new_public_key(comment: str) -> str:
    """An OpenSSH ed25519 public key (its private half is not needed: no guest has sshd)."""
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{raw.decode()} {comment}"


def md5_fingerprint(public_key: str) -> str:
    """OpenSSH's legacy MD5 fingerprint, as Nova shows a key pair's."""
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False)
    return ":".join(digest.hexdigest()[i : i + 2] for i in range(0, 32, 2))


def other_project(cloud: Cloud, name: str) -> Iterator[Cloud]:
    """The same cloud as a member of a second, fresh project."""
    identity = IdentityAdmin(cloud.stack.url("gateway"), cloud.stack.admin_password)
    try:
        project = identity.create_project(f"{name}-{cloud.lab.prefix}")
        caller = identity.add_user(f"{name}-member-{cloud.lab.prefix}", project, "member")
        gateway = cloud.stack.url("gateway")
        with httpx.Client(base_url=gateway, headers=caller.headers, timeout=60) as member:
            yield dataclasses.replace(cloud, member=member, caller=caller)
    finally:
        identity.close()


class Cli:
    """The ``openstack`` command as one member, through a clouds.yaml of its own."""

    def __init__(self, cloud: Cloud, directory: Path) -> None:
        self.config = directory / "clouds.yaml"
        caller = cloud.caller
        auth = {
            "auth_url": f"{cloud.stack.url('gateway')}/identity/v3",
            "username": caller.name,
            "password": caller.password,
            "project_id": caller.project_id,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        clouds = {"clouds": {"e2e": {"auth": auth, "identity_api_version": 3}}}
        self.config.write_text(yaml.safe_dump(clouds))
        self.config.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env = env | {"OS_CLIENT_CONFIG_FILE": str(self.config), "OS_CLOUD": "e2e"}

    def run(self, *args: str, timeout: float = 120) -> Any:
        argv = [str(OPENSTACK), *args, "-f", "json"]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"openstack {shlex.join(args)}: {done.stderr[-2000:]}"
        return json.loads(done.stdout)

    def many(self, commands: list[list[str]], timeout: float = 120) -> list[Any]:
        """Several commands in one ``openstack`` process (its interactive mode reads them
        from stdin): one start-up, one token. Their JSON outputs, in order; a command that
        failed printed none (that mode's exit status is 1 whatever happened)."""
        lines = "".join(shlex.join([*args, "-f", "json"]) + "\n" for args in commands)
        done = subprocess.run(
            [str(OPENSTACK)],
            input=lines,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        outputs, text, at = [], done.stdout, 0
        decoder = json.JSONDecoder()
        while text[at:].strip():
            at = len(text) - len(text[at:].lstrip())
            value, at = decoder.raw_decode(text, at)
            outputs.append(value)
        assert len(outputs) == len(commands), f"openstack {lines!r}: {done.stderr[-2000:]}"
        return outputs


@dataclasses.dataclass
class Received:
    """One SSE frame: its ``id`` and ``event`` fields and the envelope in ``data``."""

    sse_id: str
    event: str
    envelope: dict[str, Any]

    @property
    def resource(self) -> str:
        return str(self.envelope["payload"].get("id"))


class EventTap:
    """A member's ``GET /v1/events``, read in a thread from ``start`` until ``stop``."""

    def __init__(self, gateway: str, token: str) -> None:
        self.gateway = gateway
        self.token = token
        self.received: list[Received] = []
        self.failure: BaseException | None = None
        self._connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="e2e-events", daemon=True)

    def start(self, timeout: float = 15) -> None:
        """Returns once the gateway has subscribed the stream (its ``: connected``)."""
        self._thread.start()
        assert self._connected.wait(timeout), "no ': connected' from /v1/events"
        assert self.failure is None, self.failure

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(15)
        assert not self._thread.is_alive(), "the event reader did not stop"

    def of(self, resource: str) -> list[str]:
        """Event types about one resource, in the order they came."""
        return [r.event for r in list(self.received) if r.resource == resource]

    def wait_for(self, what: str, probe: Callable[[], bool], timeout: float = 30) -> None:
        def check() -> bool:
            assert self.failure is None, self.failure
            return probe()

        wait_until(what, check, timeout, every=0.5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._read())
        finally:
            self._loop.close()

    async def _read(self) -> None:
        self._task = asyncio.current_task()
        timeout = httpx.Timeout(10, read=None)
        headers = {"X-Auth-Token": self.token, "Accept": "text/event-stream"}
        try:
            async with (
                httpx.AsyncClient(base_url=self.gateway, timeout=timeout) as http,
                http.stream("GET", "/v1/events", headers=headers) as reply,
            ):
                if reply.status_code != 200:
                    raise AssertionError(f"/v1/events: {reply.status_code}")
                fields: dict[str, str] = {}
                async for line in reply.aiter_lines():
                    if line.startswith(":"):
                        self._connected.set()
                    elif line:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                    elif fields:
                        self._take(fields)
                        fields = {}
                raise AssertionError("the event stream ended")
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.failure = exc
        finally:
            self._connected.set()

    def _take(self, fields: dict[str, str]) -> None:
        assert "id" in fields and "data" in fields, fields
        self.received.append(Received(fields["id"], fields["event"], json.loads(fields["data"])))


def pattern() -> str:
    return f"stackling-{secrets.token_hex(8)}"


def entered(gen: Iterator[T]) -> contextlib.AbstractContextManager[T]:
    """A fixture-style generator (set up, yield, tear down) as a context manager."""
    return contextlib.contextmanager(lambda: gen)()
