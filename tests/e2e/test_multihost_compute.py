"""Three simulated hosts with real guests, through the gateway: placement and host failure.

The controller (gateway, the four APIs, on a RabbitMQ virtual host of their own) runs
here; host1..host3 are network namespaces on a fabric (``network_svc.hosts.fabric``),
each with its own network-agent, libvirtd and compute-agent; host3 is the network node
(DHCP, the router). As a project's member, through the gateway:

- an anti-affinity server group; two stackling-tiny guests in it on one VXLAN network
  land on host1 and host2 (host3's compute service disabled meanwhile, as an operator
  does: the scheduler skips it). Each gets its address by DHCP from host3 and pings the
  other: the pings cross the underlay as VXLAN, counted on the fabric per host.
- a floating IP on the guest on host2 answers from the outside namespace.
- host2 dies (every process of it SIGKILLed, its namespace deleted): its compute service
  shows ``down`` within the heartbeat timeout, a new boot avoids it, and evacuating its
  guest (host3 enabled again; host1 is the group's) gives an ACTIVE guest on host3 with
  the same port and fixed IP, answering pings on its floating IP.
- host2 comes back: its compute-agent's first reconcile removes the guest it still had
  (domain and disk); ``audit`` of every service is clean.

Everything is removed even on failure: the servers and networks, the stack, the fabric
(hosts, bridges, counters, relay), everything with the fabric's or the lab's prefix.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud import call, need_host, tiny_image_of, wait_until
from stack import SERVICES, HostLab, IdentityAdmin, Stack, broker_vhost

from common_rpc import Broker
from common_rpc.audit import SERVICES as AUDITED
from common_rpc.audit import AuditReport, request_audit
from common_rpc.broker import MessagingConfig
from common_rpc.chassis.identity import generate_keypair
from common_rpc.rpc import RpcClient
from network_svc.drivers.linux import priv
from network_svc.drivers.linux.sweep import leftovers, sweep
from network_svc.hosts.fabric import Fabric, FabricConfig, SimHost, libvirt_uri

SCENARIO_TIMEOUT_S = 900
HEARTBEAT_S = 2
DOWN_AFTER_S = 10
GUEST_S = 180  # a TCG guest's boot and DHCP on a loaded 2-core machine


class Cloud:
    """The stack's gateway as its admin and as one project's member."""

    def __init__(self, stack: Stack, admin: httpx.Client, member: httpx.Client) -> None:
        self.stack, self.admin, self.member = stack, admin, member

    def server(self, sid: str) -> dict[str, Any]:
        return dict(call(self.admin, "GET", f"/compute/v2.1/servers/{sid}", 200)["server"])

    def settled(self, sid: str, wanted: str, timeout: float = 120) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            got = self.server(sid)
            assert got["status"] != "ERROR", got.get("fault")
            return got if got["status"] == wanted and not got["OS-EXT-STS:task_state"] else None

        return wait_until(f"{sid} {wanted}", probe, timeout)

    def console(self, sid: str) -> str:
        body = {"os-getConsoleOutput": {"length": -1}}
        path = f"/compute/v2.1/servers/{sid}/action"
        return str(call(self.member, "POST", path, 200, json=body)["output"])

    def console_until(self, sid: str, mark: str, timeout: float = GUEST_S) -> str:
        seen = [""]

        def probe() -> str | None:
            seen[0] = self.console(sid)
            return seen[0] if mark in seen[0] else None

        try:
            return wait_until(f"{sid} console: {mark}", probe, timeout, every=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- console:\n{seen[0][-2000:]}") from None

    def services(self) -> dict[str, dict[str, Any]]:
        rows = call(self.admin, "GET", "/compute/v2.1/os-services", 200)["services"]
        return {r["host"]: r for r in rows}

    def set_enabled(self, host: str, enabled: bool) -> None:
        body = {"host": host, "binary": "nova-compute"}
        path = f"/compute/v2.1/os-services/{'enable' if enabled else 'disable'}"
        call(self.admin, "PUT", path, 200, json=body)


def _script(peer: str) -> str:
    """user_data: ping the peer until it answers, say so, then ping it 40 more times."""
    text = f"""#!/bin/sh
n=0
until ping -c 1 -W 1 {peer} >/dev/null 2>&1; do
  n=$((n + 1)); [ $n -ge 240 ] && break
done
if ping -c 1 -W 2 {peer} >/dev/null 2>&1; then echo "e2e: peer ok"; else echo "e2e: peer failed"; fi
ping -c 40 -i 0.5 -W 1 {peer} >/dev/null 2>&1
echo "e2e: burst done"
"""
    return base64.b64encode(text.encode()).decode()


def _ping(namespace: str, address: str) -> bool:
    argv = priv.in_netns(namespace, ["busybox", "ping", "-c", "1", "-W", "1", address])
    return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0


def _domains(host: SimHost, prefix: str) -> list[str]:
    out = priv.run(
        ["virsh", "-c", libvirt_uri(host), "list", "--all", "--name"], timeout=30, check=False
    )
    return sorted(n for n in out.split() if n.startswith(prefix))


def _instance_files(host: SimHost) -> list[str]:
    directory = host.state_dir / "compute-agent" / "instances"
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name != "_base")


def _audit(amqp_url: str) -> dict[str, AuditReport]:
    async def ask() -> dict[str, AuditReport]:
        broker = Broker(MessagingConfig(url=amqp_url), name="e2e-audit")
        try:
            rpc = RpcClient(broker, timeout=30)
            return {svc: await request_audit(rpc, svc, timeout=60) for svc in AUDITED}
        finally:
            await broker.close()

    return asyncio.run(ask())


def _run_all(steps: list[Callable[[], Any]]) -> None:
    failures: list[BaseException] = []
    for step in reversed(steps):
        try:
            step()
        except Exception as exc:  # the rest must run too
            failures.append(exc)
    if failures:
        raise failures[0]


@contextlib.contextmanager
def _fabric(vhost: str) -> Iterator[Fabric]:
    prefix = "m" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(2))
    state = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}-"))
    state.chmod(0o755)
    octet = random.randint(10, 250)
    fabric = Fabric(
        FabricConfig(
            prefix=prefix,
            underlay=f"198.19.{octet}.0/24",
            external=f"10.{octet}.251.0/24",
            host_name=f"{prefix}-host{{i}}",
            state_dir=state / "hosts",
            amqp_vhost=vhost,
        )
    )
    try:
        yield fabric
    finally:
        try:
            fabric.down()
        finally:
            sweep(prefix, state)
            left = leftovers(prefix, state)
            shutil.rmtree(state, ignore_errors=True)
        assert left == {"links": [], "netns": [], "chains": [], "dnsmasq": []}, left


@pytest.mark.timeout(SCENARIO_TIMEOUT_S)
def test_three_hosts_anti_affinity_vxlan_floating_ip_and_an_evacuation(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    need_host()
    for tool in ("nsenter", "libvirtd", "virtlogd", "virsh"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    times: dict[str, float] = {}
    started = last = time.monotonic()

    def step(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        times[name] = round(now - last, 1)
        last = now

    lab = HostLab.create()
    undo: list[Callable[[], Any]] = []
    try:
        generate_keypair(lab.root / "keys")
        vhost = f"stk-{lab.prefix}"
        with broker_vhost(vhost) as amqp_url, _fabric(vhost) as fabric:
            config = fabric.config
            hosts = [config.host(i) for i in (1, 2, 3)]
            names = [h.name for h in hosts]
            env = {
                k: v
                for k, v in lab.env().items()
                if k not in ("COMPUTE_AGENT_INSTANCES_DIR", "NETWORK_AGENT_STATE_DIR")
            } | {
                "STACKLING_AMQP_URL": amqp_url,
                "NETWORK_DEFAULT_NETWORK_TYPE": "vxlan",
                "NETWORK_NETWORK_NODES": json.dumps([names[2]]),
                "NETWORK_AGENT_DOWN_S": str(DOWN_AFTER_S),
                "NETWORK_AGENT_HEARTBEAT_INTERVAL": str(HEARTBEAT_S),
                "NETWORK_AGENT_RECONCILE_INTERVAL": "10",
                "NETWORK_AGENT_DRIVER": "linux",
                "COMPUTE_AGENT_DOWN_AFTER_S": str(DOWN_AFTER_S),
                "COMPUTE_AGENT_HEARTBEAT_INTERVAL": str(HEARTBEAT_S),
                "COMPUTE_AGENT_RECONCILE_INTERVAL": "10",
                "COMPUTE_BUILD_TIMEOUT_S": "240",
                "COMPUTE_RPC_TIMEOUT_S": "15",
                "COMPUTE_SPAWN_TIMEOUT_S": "120",
                "COMPUTE_AGENT_CAPACITY_VCPUS": "4",
                "COMPUTE_AGENT_CAPACITY_RAM_MB": "2048",
                "COMPUTE_AGENT_CAPACITY_DISK_GB": "20",
                "COMPUTE_AGENT_SHUTDOWN_TIMEOUT": "0",
            }
            env.pop("STACKLING_HOST")
            stack = Stack(lab.root, tuple(SERVICES), env=env)
            procs: dict[tuple[int, str], subprocess.Popen[bytes]] = {}

            def start_host(index: int) -> None:
                host = fabric.host_up(index)
                fabric.start_libvirt(host)
                agent_env = stack.environment()
                for binary in ("network-agent", "compute-agent"):
                    procs[(index, binary)] = fabric.start_agent(host, binary, agent_env)

            try:
                stack.start()
                stack.wait_ready()
                fabric.up()
                fabric.start_relay()
                for index in (1, 2, 3):
                    start_host(index)
                identity = IdentityAdmin(stack.url("gateway"), stack.admin_password)
                undo.append(identity.close)
                project = identity.create_project(f"multi-{lab.prefix}")
                caller = identity.add_user(f"member-{lab.prefix}", project, "member")
                gateway = stack.url("gateway")
                admin = httpx.Client(base_url=gateway, headers=identity.admin.headers, timeout=60)
                member = httpx.Client(base_url=gateway, headers=caller.headers, timeout=60)
                undo += [admin.close, member.close]
                cloud = Cloud(stack, admin, member)

                def all_up() -> bool:
                    up = {h for h, s in cloud.services().items() if s["state"] == "up"}
                    agents = call(admin, "GET", "/network/v2.0/agents", 200)["agents"]
                    net = {a["host"] for a in agents if a["alive"]}
                    return set(names) <= up and set(names) <= net

                wait_until("3 hosts' agents up", all_up, 90)
                step("stack + 3 hosts up")

                # The provider network (flat on each host's ext0) and the project's VXLAN one.
                ext_body = {
                    "network": {
                        "name": f"ext-{lab.prefix}",
                        "router:external": True,
                        "provider:network_type": "flat",
                        "provider:physical_network": "physnet1",
                    }
                }
                ext = call(admin, "POST", "/network/v2.0/networks", 201, json=ext_body)["network"]
                undo.append(lambda: admin.delete(f"/network/v2.0/networks/{ext['id']}"))
                head = config.external.rsplit(".", 1)[0]
                subnet = {
                    "network_id": ext["id"],
                    "cidr": config.external,
                    "ip_version": 4,
                    "gateway_ip": config.outside_ip,
                    "enable_dhcp": False,
                    "allocation_pools": [{"start": f"{head}.10", "end": f"{head}.50"}],
                }
                call(admin, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
                base = f"10.{random.randint(100, 199)}.7"
                net = call(
                    member,
                    "POST",
                    "/network/v2.0/networks",
                    201,
                    json={"network": {"name": "spans"}},
                )["network"]
                undo.append(lambda: member.delete(f"/network/v2.0/networks/{net['id']}"))
                assert (
                    net["provider:network_type"] == "vxlan"
                    if "provider:network_type" in net
                    else True
                )
                sub = {
                    "network_id": net["id"],
                    "cidr": f"{base}.0/24",
                    "ip_version": 4,
                    "gateway_ip": f"{base}.1",
                    "allocation_pools": [{"start": f"{base}.100", "end": f"{base}.200"}],
                }
                sub_id = call(member, "POST", "/network/v2.0/subnets", 201, json={"subnet": sub})[
                    "subnet"
                ]["id"]
                router = call(
                    member,
                    "POST",
                    "/network/v2.0/routers",
                    201,
                    json={
                        "router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}
                    },
                )["router"]
                rpath = f"/network/v2.0/routers/{router['id']}"
                undo.append(lambda: member.delete(rpath))
                call(
                    member, "PUT", f"{rpath}/add_router_interface", 200, json={"subnet_id": sub_id}
                )
                undo.append(
                    lambda: member.put(
                        f"{rpath}/remove_router_interface", json={"subnet_id": sub_id}
                    )
                )
                groups = call(
                    member,
                    "GET",
                    "/network/v2.0/security-groups",
                    200,
                    params={"project_id": project, "name": "default"},
                )
                rule = {
                    "security_group_id": groups["security_groups"][0]["id"],
                    "direction": "ingress",
                    "ethertype": "IPv4",
                    "protocol": "icmp",
                }
                call(
                    member,
                    "POST",
                    "/network/v2.0/security-group-rules",
                    201,
                    json={"security_group_rule": rule},
                )
                dhcp = call(
                    admin,
                    "GET",
                    "/network/v2.0/ports",
                    200,
                    params={"network_id": net["id"], "device_owner": "network:dhcp"},
                )
                assert [p["binding:host_id"] for p in dhcp["ports"]] == [names[2]]

                # The guest image, a flavor, an anti-affinity group; host3 out of scheduling.
                image_gen = tiny_image_of(_ImageCloud(member))
                image = next(image_gen)
                undo.append(lambda: next(image_gen, None))
                body = {"flavor": {"name": f"tiny-{lab.prefix}", "ram": 128, "vcpus": 1, "disk": 1}}
                flavor = call(admin, "POST", "/compute/v2.1/flavors", 200, json=body)["flavor"]
                undo.append(lambda: admin.delete(f"/compute/v2.1/flavors/{flavor['id']}"))
                group = call(
                    member,
                    "POST",
                    "/compute/v2.1/os-server-groups",
                    200,
                    json={"server_group": {"name": "apart", "policies": ["anti-affinity"]}},
                )
                group = group["server_group"]
                cloud.set_enabled(names[2], False)
                servers: list[str] = []

                def delete_servers() -> None:
                    for sid in servers:
                        member.delete(f"/compute/v2.1/servers/{sid}")
                    for sid in servers:
                        wait_until(
                            f"{sid} deleted",
                            lambda sid=sid: (
                                member.get(f"/compute/v2.1/servers/{sid}").status_code == 404
                            ),
                            120,
                        )

                undo.append(delete_servers)
                ips = (f"{base}.21", f"{base}.22")

                def boot(name: str, ip: str | None, script: str | None, **extra: Any) -> str:
                    server: dict[str, Any] = {
                        "name": name,
                        "imageRef": image,
                        "flavorRef": flavor["id"],
                    }
                    network: dict[str, Any] = {"uuid": net["id"]}
                    if ip:
                        network["fixed_ip"] = ip
                    server["networks"] = [network]
                    if script:
                        server["user_data"] = script
                    reply = call(
                        member,
                        "POST",
                        "/compute/v2.1/servers",
                        202,
                        json={"server": server, **extra},
                    )
                    servers.append(str(reply["server"]["id"]))
                    return servers[-1]

                before = fabric.vxlan_packets()
                hint = {"os:scheduler_hints": {"group": group["id"]}}
                vm1 = boot("vm1", ips[0], _script(ips[1]), **hint)
                vm2 = boot("vm2", ips[1], _script(ips[0]), **hint)
                placed = {cloud.settled(s, "ACTIVE")["OS-EXT-SRV-ATTR:host"]: s for s in (vm1, vm2)}
                assert set(placed) == {names[0], names[1]}, placed
                on1, on2 = placed[names[0]], placed[names[1]]
                shown = call(member, "GET", f"/compute/v2.1/os-server-groups/{group['id']}", 200)
                assert sorted(shown["server_group"]["members"]) == sorted([vm1, vm2])
                step("2 guests ACTIVE on host1 and host2")

                # DHCP from host3, pings between the guests, counted as VXLAN on the fabric.
                for sid in (on1, on2):
                    cloud.console_until(sid, "e2e: peer ok")
                step("DHCP + guests ping each other")
                mid = fabric.vxlan_packets()
                for sid in (on1, on2):
                    cloud.console_until(sid, "e2e: burst done", 90)
                after = fabric.vxlan_packets()
                for index in (1, 2):  # 40 echo requests and 40 replies each way, at the least
                    assert after[index] - mid.get(index, 0) >= 40, (before, mid, after)
                step("ping burst counted on the fabric")

                # A floating IP on the guest on host2 answers from outside (router on host3).
                port2 = call(member, "GET", "/network/v2.0/ports", 200, params={"device_id": on2})[
                    "ports"
                ][0]
                fip = call(
                    member,
                    "POST",
                    "/network/v2.0/floatingips",
                    201,
                    json={"floatingip": {"floating_network_id": ext["id"], "port_id": port2["id"]}},
                )["floatingip"]
                undo.append(lambda: member.delete(f"/network/v2.0/floatingips/{fip['id']}"))
                address = fip["floating_ip_address"]
                wait_until("floating IP answers", lambda: _ping(config.outside, address), 60)
                step("floating IP reaches host2's guest")

                # host2 dies. Its compute service is down within the heartbeat timeout.
                killed_at = time.monotonic()
                fabric.kill_host(2)
                for key in [k for k in procs if k[0] == 2]:
                    procs.pop(key).wait(timeout=15)
                wait_until(
                    "host2 down",
                    lambda: cloud.services()[names[1]]["state"] == "down",
                    DOWN_AFTER_S + 3 * HEARTBEAT_S + 5,
                )
                times["host2 seen down after"] = round(time.monotonic() - killed_at, 1)
                # A new boot avoids it (host3 back in scheduling first).
                cloud.set_enabled(names[2], True)
                vm3 = boot("vm3", None, None)
                assert cloud.settled(vm3, "ACTIVE")["OS-EXT-SRV-ATTR:host"] != names[1]
                member.delete(f"/compute/v2.1/servers/{vm3}")
                step("host2 down + a boot avoids it")

                # Evacuation: host3 (host1 holds the group's other member), same port and IP.
                path = f"/compute/v2.1/servers/{on2}/action"
                call(admin, "POST", path, 200, json={"evacuate": {"onSharedStorage": False}})
                moved = cloud.settled(on2, "ACTIVE", 180)
                assert moved["OS-EXT-SRV-ATTR:host"] == names[2], moved
                port_now = call(admin, "GET", f"/network/v2.0/ports/{port2['id']}", 200)["port"]
                assert port_now["binding:host_id"] == names[2]
                assert port_now["fixed_ips"][0]["ip_address"] == ips[1]
                addresses = [a["addr"] for a in moved["addresses"]["spans"]]
                assert ips[1] in addresses and address in addresses
                wait_until(
                    "evacuated guest answers", lambda: _ping(config.outside, address), GUEST_S
                )
                step("evacuated to host3, answers on its floating IP")

                # host2 comes back: its agent removes the guest that now lives on host3.
                held = _instance_files(hosts[1])
                assert on2 in held, held  # its disk survived the failure
                start_host(2)
                wait_until("host2 up", lambda: cloud.services()[names[1]]["state"] == "up", 60)
                wait_until(
                    "host2 cleaned",
                    lambda: (
                        not _domains(hosts[1], lab.domain_prefix) and not _instance_files(hosts[1])
                    ),
                    60,
                )
                step("host2 back and cleaned")

                def audit_clean() -> bool:
                    reports = _audit(amqp_url)
                    return all(r.clean for r in reports.values())

                wait_until("audit clean", audit_clean, 60, every=5)
                step("audit clean")
            finally:
                try:
                    _run_all(undo)
                finally:
                    stack.stop()
                    for proc in procs.values():
                        if proc.poll() is None:
                            proc.terminate()
                    for proc in procs.values():
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(timeout=15)
                    logs = tmp_path_factory.mktemp("logs")
                    for log in [*lab.root.glob("*.log"), *config.state_dir.glob("*/*.log")]:
                        shutil.copy(log, logs / f"{log.parent.name}-{log.name}")
    finally:
        lab.sweep()
    times["total"] = round(time.monotonic() - started, 1)
    print("multihost compute timings:", times)


class _ImageCloud:
    """What ``tiny_image_of`` uses of a cloud: its member's client."""

    def __init__(self, member: httpx.Client) -> None:
        self.member = member
