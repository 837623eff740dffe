"""The e2e cloud: the whole stack with its agents on this host, driven through the gateway.

``start_cloud`` runs the gateway, the four APIs and the network, compute and volume agents
(libvirt ``qemu:///system``, TCG; tgt) on a RabbitMQ virtual host of their own, every host
object under one random prefix (``HostLab``), and yields a ``Cloud``: the stack with HTTP
clients as admin and as a fresh project's member. The helpers below are what the scenarios
share: stackling-tiny images, a flavor, boots, waits, the host and project checks.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import libvirt
import openstack
import pytest
from stack import (
    AGENTS,
    LIBVIRT_URI,
    SERVICES,
    Caller,
    HostLab,
    IdentityAdmin,
    Stack,
    broker_vhost,
)

from common_rpc import Broker
from common_rpc.audit import SERVICES as AUDITED
from common_rpc.audit import AuditReport, request_audit
from common_rpc.broker import MessagingConfig
from common_rpc.chassis.identity import generate_keypair
from common_rpc.rpc import RpcClient
from network_svc.drivers.linux import netlink, priv

ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("STACKLING_GUEST_DIR", "/var/lib/stackling/guest"))
BUILD_TIMEOUT_S = 60
RPC_TIMEOUT_S = 10
RECONCILE_S = 10
HOST_CLEAN_S = 3 * RECONCILE_S
GUEST_TIMEOUT_S = 150  # TCG guests on a busy 2-core machine
T = TypeVar("T")


def need_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("QEMU guests, bridges and namespaces need root")
    tools = ("qemu-system-x86_64", "qemu-img", "genisoimage", "dnsmasq", "tgtadm", "rabbitmqctl")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    try:
        libvirt.open(LIBVIRT_URI).close()
    except libvirt.libvirtError:
        script = ROOT / "deploy/start-host-daemons.sh"
        subprocess.run(["bash", str(script)], timeout=120, check=True)
    if not (GUEST_DIR / "vmlinuz").exists() or not (GUEST_DIR / "initramfs.gz").exists():
        env = os.environ | {"STACKLING_GUEST_DIR": str(GUEST_DIR)}
        subprocess.run(
            ["bash", str(ROOT / "deploy/guest-image.sh")], env=env, timeout=600, check=True
        )


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """``probe()`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s: {what}"
        time.sleep(every)


@dataclass
class Cloud:
    """The running stack and the HTTP clients of its gateway, as admin and as a member."""

    stack: Stack
    lab: HostLab
    amqp_url: str
    admin: httpx.Client
    member: httpx.Client
    caller: Caller

    def sdk(self) -> openstack.connection.Connection:
        return openstack.connect(
            auth_url=f"{self.stack.url('gateway')}/identity/v3",
            username=self.caller.name,
            password=self.caller.password,
            project_id=self.caller.project_id,
            user_domain_name="Default",
            project_domain_name="Default",
        )

    def audit(self) -> dict[str, AuditReport]:
        async def ask() -> dict[str, AuditReport]:
            broker = Broker(MessagingConfig(url=self.amqp_url), name="e2e-audit")
            try:
                rpc = RpcClient(broker, timeout=30)
                return {svc: await request_audit(rpc, svc, timeout=60) for svc in AUDITED}
            finally:
                await broker.close()

        return asyncio.run(ask())

    def findings(self) -> dict[str, list[dict[str, Any]]]:
        reports = self.audit()
        return {svc: [f.model_dump() for f in r.findings] for svc, r in reports.items()}

    def project_lists(self) -> dict[str, list[str]]:
        """Ids of everything the member's project still has, per service collection."""
        pid = self.caller.project_id
        out: dict[str, list[str]] = {}
        for collection in ("networks", "subnets", "ports", "routers", "floatingips"):
            reply = self.member.get(f"/network/v2.0/{collection}", params={"project_id": pid})
            assert reply.status_code == 200, reply.text
            out[collection] = [i["id"] for i in reply.json()[collection]]
        reply = self.member.get("/compute/v2.1/servers")
        out["servers"] = [s["id"] for s in reply.json()["servers"]]
        reply = self.member.get(f"/volume/v3/{pid}/volumes")
        assert reply.status_code == 200, reply.text
        out["volumes"] = [v["id"] for v in reply.json()["volumes"]]
        images = self.member.get("/image/v2/images").json()["images"]
        out["images"] = [i["id"] for i in images if i["owner"] == pid]
        return out

    def server(self, server_id: str) -> dict[str, Any] | None:
        reply = self.member.get(f"/compute/v2.1/servers/{server_id}")
        if reply.status_code == 404:
            return None
        assert reply.status_code == 200, reply.text
        return reply.json()["server"]

    def console(self, server_id: str) -> str:
        body = {"os-getConsoleOutput": {"length": -1}}
        reply = self.member.post(f"/compute/v2.1/servers/{server_id}/action", json=body)
        assert reply.status_code == 200, reply.text
        return str(reply.json()["output"])

    def gone(self, server_id: str) -> bool:
        return self.server(server_id) is None


def call(client: httpx.Client, method: str, path: str, expect: int, **kw: Any) -> Any:
    reply = client.request(method, path, **kw)
    assert reply.status_code == expect, f"{method} {path}: {reply.status_code} {reply.text}"
    return reply.json() if reply.content else None


def wait_agents(admin: httpx.Client, host: str) -> None:
    """Both agents have reported: the network API lists its agent, compute its hypervisor."""

    def network_agent() -> bool:
        agents = admin.get("/network/v2.0/agents").json().get("agents", [])
        return any(a["host"] == host and a["alive"] for a in agents)

    def hypervisor() -> bool:
        reply = admin.get("/compute/v2.1/os-hypervisors/detail")
        hypervisors = reply.json().get("hypervisors", []) if reply.status_code == 200 else []
        return any(h.get("hypervisor_hostname") == host and h.get("state") == "up"
                   for h in hypervisors)  # fmt: skip

    wait_until("network-agent heartbeat", network_agent, 60)
    wait_until("compute-agent heartbeat", hypervisor, 60)


def start_cloud(
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str] | None = None,
    processes: tuple[str, ...] = (*SERVICES, *AGENTS),
) -> Iterator[Cloud]:
    """The whole stack on a virtual host of its own, as a fresh project's member; on exit
    nothing of it may be left on the host."""
    need_host()
    lab = HostLab.create()
    try:
        generate_keypair(lab.root / "keys")
        with broker_vhost(f"stk-{lab.prefix}") as amqp_url:
            stack_env = (
                lab.env()
                | {
                    "STACKLING_AMQP_URL": amqp_url,
                    "COMPUTE_BUILD_TIMEOUT_S": str(BUILD_TIMEOUT_S),
                    "COMPUTE_RPC_TIMEOUT_S": str(RPC_TIMEOUT_S),
                    "COMPUTE_AGENT_CAPACITY_VCPUS": "4",
                    "COMPUTE_AGENT_CAPACITY_RAM_MB": "2048",
                    "COMPUTE_AGENT_CAPACITY_DISK_GB": "20",
                    "COMPUTE_AGENT_SHUTDOWN_TIMEOUT": "0",
                    # A deleted network's bridge and DHCP namespace go at the agent's reconcile.
                    "NETWORK_AGENT_RECONCILE_INTERVAL": str(RECONCILE_S),
                }
                | (env or {})
            )
            stack = Stack(lab.root, processes, env=stack_env)
            try:  # stopped before its virtual host goes
                stack.start()
                stack.wait_ready()
                yield from as_member(stack, lab, amqp_url)
                settle(lab)  # what the tests deleted leaves the host at the next reconcile
            finally:
                stack.stop()
    finally:
        left = lab.leftovers()
        logs = tmp_path_factory.mktemp("logs")  # pytest keeps them; the lab's root goes
        for log in lab.root.glob("*.log"):
            shutil.copy(log, logs / log.name)
        lab.sweep()
    empty: dict[str, list[str]] = {k: [] for k in left}
    assert left == empty, f"left on the host after the stack stopped: {left}"


def tiny_image_of(cloud: Cloud) -> Iterator[str]:
    """stackling-tiny as the project's own images: kernel (aki), ramdisk (ari), machine."""
    made: list[str] = []

    def upload(name: str, disk: str, data: bytes, **props: str) -> str:
        body = {"name": name, "disk_format": disk, "container_format": disk, **props}
        image = call(cloud.member, "POST", "/image/v2/images", 201, json=body)
        made.append(image["id"])
        headers = {"Content-Type": "application/octet-stream"}
        path = f"/image/v2/images/{image['id']}/file"
        call(cloud.member, "PUT", path, 204, content=data, headers=headers)
        return str(image["id"])

    try:
        kernel = upload("tiny-kernel", "aki", (GUEST_DIR / "vmlinuz").read_bytes())
        ramdisk = upload("tiny-ramdisk", "ari", (GUEST_DIR / "initramfs.gz").read_bytes())
        yield upload(
            "stackling-tiny",
            "ami",
            b"stackling-tiny",
            kernel_id=kernel,
            ramdisk_id=ramdisk,
            os_command_line="console=ttyS0 quiet",
        )
    finally:
        for image_id in reversed(made):
            cloud.member.delete(f"/image/v2/images/{image_id}")


def flavor_of(cloud: Cloud) -> Iterator[str]:
    """A one-vCPU, 128 MiB flavor of the lab's own."""
    body = {"flavor": {"name": f"tiny-{cloud.lab.prefix}", "ram": 128, "vcpus": 1, "disk": 1}}
    made = call(cloud.admin, "POST", "/compute/v2.1/flavors", 200, json=body)["flavor"]
    try:
        yield str(made["id"])
    finally:
        cloud.admin.delete(f"/compute/v2.1/flavors/{made['id']}")


def settle(lab: HostLab) -> None:
    deadline = time.monotonic() + HOST_CLEAN_S
    while any(lab.leftovers().values()) and time.monotonic() < deadline:
        time.sleep(1)


def as_member(stack: Stack, lab: HostLab, amqp_url: str) -> Iterator[Cloud]:
    """A fresh project's member and the admin, once both agents have reported."""
    identity = IdentityAdmin(stack.url("gateway"), stack.admin_password)
    try:
        project = identity.create_project(f"servers-{lab.prefix}")
        caller = identity.add_user(f"member-{lab.prefix}", project, "member")
        gateway = stack.url("gateway")
        admin = httpx.Client(base_url=gateway, headers=identity.admin.headers, timeout=60)
        member = httpx.Client(base_url=gateway, headers=caller.headers, timeout=60)
        with admin, member:
            wait_agents(admin, lab.host)
            yield Cloud(stack, lab, amqp_url, admin, member, caller)
    finally:
        identity.close()


def user_data(peer: str, gateway: str) -> str:
    """Ping the peer until it answers (it may boot later), then report both pings."""
    script = f"""#!/bin/sh
n=0
until ping -c 1 -W 1 {peer} >/dev/null 2>&1; do
  n=$((n + 1)); [ $n -ge 120 ] && break
done
for ip in {peer} {gateway}; do
  if ping -c 2 -W 2 $ip; then echo "e2e: ping $ip ok"; else echo "e2e: ping $ip failed"; fi
done
"""
    return base64.b64encode(script.encode()).decode()


def boot(cloud: Cloud, name: str, image: str, flavor: str, **server: Any) -> str:
    body = {"server": {"name": name, "imageRef": image, "flavorRef": flavor, **server}}
    return str(call(cloud.member, "POST", "/compute/v2.1/servers", 202, json=body)["server"]["id"])


def status(cloud: Cloud, server_id: str, wanted: str) -> dict[str, Any] | None:
    server = cloud.server(server_id)
    assert server is not None, f"server {server_id} vanished"
    if server["status"] == wanted:
        return server
    assert server["status"] in ("BUILD", wanted), (server["status"], server.get("fault"))
    return None


def external_client(lab: HostLab, bridge: str, cidr: str) -> str:
    """A namespace on the external network's bridge (named with the lab's prefix)."""
    namespace, host_end, inner = f"{lab.prefix}ext", f"{lab.prefix}xh", f"{lab.prefix}xc"
    netlink.ensure_netns(namespace)
    netlink.ensure_veth(host_end, inner, namespace)
    netlink.move_to_netns(inner, namespace)
    netlink.set_up(inner, namespace)
    netlink.set_link("lo", namespace, state="up")
    netlink.ensure_addresses(inner, [cidr], namespace)
    priv.run(["ip", "link", "set", host_end, "master", bridge, "up"], timeout=15)
    return namespace


def drop_client(lab: HostLab) -> None:
    netlink.delete_link(f"{lab.prefix}xh")
    netlink.remove_netns(f"{lab.prefix}ext")


def routers_seen(lab: HostLab) -> str:
    """What the host has of the lab's routers (addresses, NAT) and the agent's last words:
    for a failed reachability check, so its cause can be read from the test report."""
    parts = []
    for namespace in sorted(n for n in netlink.list_netns() if n.startswith(lab.prefix)):
        if "qrouter-" not in namespace:
            continue
        for argv in (["ip", "-br", "addr"], ["iptables-save", "-t", "nat"]):
            run = priv.in_netns(namespace, argv)
            out = subprocess.run(run, capture_output=True, text=True, timeout=10, check=False)
            parts.append(f"$ {namespace}: {' '.join(argv)}\n{out.stdout}{out.stderr}")
    log = lab.root / "network-agent.log"
    tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
    return "\n".join([*parts, "network-agent.log (tail):", *tail])


def ping(namespace: str, address: str) -> bool:
    argv = priv.in_netns(namespace, ["busybox", "ping", "-c", "1", "-W", "1", address])
    return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0


def delete_servers(cloud: Cloud, servers: list[str]) -> None:
    for sid in servers:
        reply = cloud.member.delete(f"/compute/v2.1/servers/{sid}")
        assert reply.status_code in (204, 404), reply.text
    for sid in servers:
        wait_until(f"{sid} deleted", lambda sid=sid: cloud.gone(sid), 90)


def run_all(steps: list[Callable[[], Any]]) -> None:
    """Every cleanup step, last to first; the first failure is raised after all ran."""
    failures: list[BaseException] = []
    for step in reversed(steps):
        try:
            step()
        except Exception as exc:  # the rest must run too
            failures.append(exc)
    if failures:
        raise failures[0]


def assert_project_empty(cloud: Cloud) -> None:
    """Every service lists nothing of the project (its images stay for the next test)."""
    lists = cloud.project_lists()
    lists.pop("images")
    assert lists == {k: [] for k in lists}, lists


def assert_host_clean(lab: HostLab) -> None:
    """Nothing with the prefix on the host (the agents' reconcile may still be removing)."""
    settle(lab)
    left = {k: v for k, v in lab.leftovers().items() if v}
    assert left == {}, f"still on the host after {HOST_CLEAN_S}s: {left}"


def volume_status(cloud: Cloud, volume_id: str, wanted: str) -> bool:
    path = f"/volume/v3/{cloud.caller.project_id}/volumes/{volume_id}"
    status = call(cloud.member, "GET", path, 200)["volume"]["status"]
    assert status not in ("error", "error_deleting"), status
    return status == wanted


def delete_volume(cloud: Cloud, volume_id: str) -> None:
    path = f"/volume/v3/{cloud.caller.project_id}/volumes/{volume_id}"
    reply = cloud.member.delete(path)
    assert reply.status_code in (202, 404), reply.text
    wait_until("volume deleted", lambda: cloud.member.get(path).status_code == 404, 60)


def restart(stack: Stack, name: str) -> None:
    if stack.procs[name].poll() is not None:
        stack.start_one(name)
        stack.wait_ready()
