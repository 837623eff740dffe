"""Compute benchmark: stackling-tiny servers booted through the API next to bare libvirt boots.

In one run, on this machine: network-api and network-agent (real Linux drivers, a random
name prefix, "local" networks), compute-api and compute-agent (qemu:///system, TCG, a
domain prefix and instances directory of this run), all on a RabbitMQ vhost of their own
and started from their console scripts (network-agent's entry point with its forked
helpers detached from its signals, see ``NETWORK_AGENT``). Measured:

- servers booted one at a time through the API: POST /v2.1/servers -> 202 latency, boot
  -> ACTIVE and boot -> the guest's DHCP line ("stackling-guest: ip <addr>") on its serial
  console (the console log file, polled; each server's output is then checked through
  ``os-getConsoleOutput``);
- the floor, booted one at a time in turn with them: the same kernel and initramfs with
  the same vCPUs and RAM as a transient domain (libvirt ``createXML``, what ``virsh
  create`` does) on a bridge of its own with a dnsmasq serving it, to its DHCP line;
- the wall time for ``--burst`` servers booted at once through the API next to as many
  bare ``createXML`` at once, until every guest printed its DHCP line (median of
  ``--rounds``, in alternating order).

Each guest's init line ("stackling-guest: boot") is timed too: boot -> DHCP splits into
the guest kernel's boot (CPU-bound under TCG, so noisy on a busy host) and what follows.

Everything made on the host (domains, disks, bridges, taps, netns, dnsmasq, iptables and
ebtables rules) carries the run's prefix and is removed at the end, also on failure; what
is left is counted and printed. Prints a table, the ratios against their targets and one
JSON line. Exit status 0 whatever the ratios; 1 if a system failed.

    python -m bench.compute_bench [--servers 5] [--burst 10] [--rounds 1] [--warmup 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import libvirt

from bench.gateway_bench import Processes, _wait_http
from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair
from common_rpc.testing import free_port
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.drivers.libvirt.disks import InstanceStore
from network_svc.drivers.linux import netlink
from network_svc.drivers.linux.sweep import leftovers as net_leftovers
from network_svc.drivers.linux.sweep import sweep as net_sweep

BIN = Path(sys.executable).parent
URI = "qemu:///system"
GUEST_DIR = Path(os.environ.get("STACKLING_GUEST_DIR", "/var/lib/stackling/guest"))
CMDLINE = "console=ttyS0 quiet"
DHCP_LINE = re.compile(r"stackling-guest: ip (\S+)")
INIT_LINE = "stackling-guest: boot "  # the guest's init runs: the kernel is up
VCPUS, RAM_MB = 1, 128
POLL_S = 0.05  # the console logs
API_POLL_S = 0.1  # the server list: less load on the CPUs the guests boot on
RECONCILE_S = 20
BOOT_TIMEOUT_S = 240.0


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; the bench raises them instead."""


libvirt.registerErrorHandler(_quiet, None)


# ----------------------------------------------------------------------------- timings


@dataclass
class Boot:
    """One guest's times, in seconds from the start of its batch."""

    name: str
    console: Path
    create_s: float | None = None  # POST -> 202 (API boots only)
    active_s: float | None = None  # -> ACTIVE; the floor's: createXML returned
    init_s: float | None = None
    dhcp_s: float | None = None
    address: str | None = None
    server_id: str | None = None
    _seen: int = field(default=0, repr=False)

    def check_console(self, now: float) -> None:
        """Reads what the console log gained since the last look; notes the DHCP line."""
        if self.dhcp_s is not None:
            return
        try:
            size = self.console.stat().st_size
        except FileNotFoundError:
            return
        if size == self._seen:
            return
        self._seen = size
        text = self.console.read_bytes().decode("utf-8", "replace")
        if self.init_s is None and INIT_LINE in text:
            self.init_s = now
        match = DHCP_LINE.search(text)
        if match:
            self.dhcp_s, self.address = now, match.group(1)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time used so far by each process and its reaped children (iptables, qemu-img)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = sum(int(x) for x in fields[11:15]) / tick
    return out


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 3)


# ----------------------------------------------------------------------------- the stack


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Stack:
    """The four processes, their URLs and the callers' signed headers."""

    tmp: Path
    prefix: str
    host: str
    compute_url: str
    network_url: str
    member: dict[str, str]
    admin: dict[str, str]
    instances: InstanceStore
    logs: list[Path]
    pids: dict[str, int]


def start_stack(procs: Processes, tmp: Path, prefix: str, amqp_url: str) -> Stack:
    private, _ = generate_keypair(tmp / "keys")
    signer = IdentitySigner.from_file(private)
    host = f"cbench-{prefix}"
    ports = {"compute": free_port(), "network": free_port()}
    instances = tmp / "instances"
    (tmp / "network-agent").mkdir(mode=0o755)  # dnsmasq reads it after dropping root
    env = dict(
        os.environ,
        STACKLING_DATA_DIR=str(tmp),
        STACKLING_AMQP_URL=amqp_url,
        STACKLING_LOG_LEVEL="WARNING",
    )
    logs = [tmp / f"{n}.log" for n in ("network-api", "network-agent", "compute-api", "agent")]
    network_api = procs.start(
        [str(BIN / "network-api")],
        dict(env, NETWORK_PORT=str(ports["network"]), NETWORK_DEFAULT_NETWORK_TYPE="local"),
        logs[0],
    )
    compute_api = procs.start(
        [str(BIN / "compute-api")],
        dict(env, COMPUTE_PORT=str(ports["compute"]), COMPUTE_HOST=f"api-{prefix}"),
        logs[2],
    )
    compute_url = f"http://127.0.0.1:{ports['compute']}"
    network_url = f"http://127.0.0.1:{ports['network']}"
    _wait_http(f"{network_url}/healthz", network_api)
    _wait_http(f"{compute_url}/healthz", compute_api)
    # The agents once the APIs answer: their first reconcile then finds them.
    network_agent = procs.start(
        [str(BIN / "network-agent")],
        dict(
            env,
            NETWORK_HOST=host,
            NETWORK_AGENT_NAME_PREFIX=prefix,
            NETWORK_AGENT_STATE_DIR=str(tmp / "network-agent"),
            NETWORK_AGENT_LOCAL_IP="127.0.0.1",
            # A deleted network leaves the host at the agent's next reconcile (no push).
            NETWORK_AGENT_RECONCILE_INTERVAL=str(RECONCILE_S),
        ),
        logs[1],
    )
    compute_agent = procs.start(
        [str(BIN / "compute-agent")],
        dict(
            env,
            COMPUTE_HOST=host,
            COMPUTE_AGENT_LIBVIRT_URI=URI,
            COMPUTE_AGENT_VIRT_TYPE="qemu",
            COMPUTE_AGENT_DOMAIN_PREFIX=f"{prefix}-vm-",
            COMPUTE_AGENT_INSTANCES_DIR=str(instances),
            COMPUTE_AGENT_SHUTDOWN_TIMEOUT="0",
            COMPUTE_AGENT_HEARTBEAT_INTERVAL="2",
            # Room for every boot of the run: the bench measures speed, not placement.
            COMPUTE_AGENT_CAPACITY_VCPUS="64",
            COMPUTE_AGENT_CAPACITY_RAM_MB="16384",
            COMPUTE_AGENT_CAPACITY_DISK_GB="200",
        ),
        logs[3],
    )

    def headers(*roles: str) -> dict[str, str]:
        ctx = RequestContext(project_id="bench", user_id="bench", roles=frozenset(roles))
        return {IDENTITY_HEADER: signer.sign(ctx, ttl_s=3600)}

    stack = Stack(
        tmp, prefix, host, compute_url, network_url, headers("member", "reader"),
        headers("admin", "member", "reader"), InstanceStore(instances), logs,
        {"network-api": network_api.pid, "network-agent": network_agent.pid,
         "compute-api": compute_api.pid, "compute-agent": compute_agent.pid},
    )  # fmt: skip
    _wait_agents(stack, {"network-agent": network_agent, "compute-agent": compute_agent})
    return stack


def _wait_agents(stack: Stack, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Until both agents of the host report alive to their services."""
    deadline = time.monotonic() + 90
    waiting = set(procs)
    while waiting and time.monotonic() < deadline:
        for binary, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{binary} exited with {proc.returncode}")
        if "network-agent" in waiting:
            rows = httpx.get(f"{stack.network_url}/v2.0/agents", headers=stack.admin).json()
            if any(a["host"] == stack.host and a["alive"] for a in rows["agents"]):
                waiting.discard("network-agent")
        if "compute-agent" in waiting:
            url = f"{stack.compute_url}/v2.1/os-services"
            rows = httpx.get(url, headers=stack.admin).json()["services"]
            if any(s["host"] == stack.host and s["state"] == "up" for s in rows):
                waiting.discard("compute-agent")
        time.sleep(0.3)
    if waiting:
        raise RuntimeError(f"never reported alive: {sorted(waiting)}")


def _ok(resp: httpx.Response, *codes: int) -> dict[str, Any]:
    if resp.status_code not in codes:
        raise RuntimeError(
            f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
        )
    return resp.json() if resp.content else {}


async def prepare_cloud(stack: Stack, http: httpx.AsyncClient) -> dict[str, str]:
    """A flavor, the stackling-tiny kernel and ramdisk images, a network with a subnet."""
    c, n = stack.compute_url, stack.network_url
    flavor = {"flavor": {"name": f"bench-{stack.prefix}", "ram": RAM_MB, "vcpus": VCPUS, "disk": 0}}
    flavor_id = _ok(await http.post(f"{c}/v2.1/flavors", json=flavor, headers=stack.admin), 200)
    # A burst (--burst N) may ask for more than Nova's default quota: the operator lifts it.
    unlimited = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
    reply = await http.put(f"{c}/v2.1/os-quota-sets/bench", json=unlimited, headers=stack.admin)
    _ok(reply, 200)
    images: dict[str, str] = {}
    for kind, file, extra in (
        ("ari", "initramfs.gz", {}),
        ("aki", "vmlinuz", {"os_command_line": CMDLINE}),
    ):
        if kind == "aki":
            extra["ramdisk_id"] = images["ari"]
        body = {"name": f"tiny-{kind}", "disk_format": kind, "container_format": kind, **extra}
        image = _ok(await http.post(f"{c}/image/v2/images", json=body, headers=stack.member), 201)
        upload = await http.put(
            f"{c}/image/v2/images/{image['id']}/file",
            content=(GUEST_DIR / file).read_bytes(),
            headers=stack.member | {"Content-Type": "application/octet-stream"},
        )
        _ok(upload, 204)
        images[kind] = image["id"]
    net = _ok(await http.post(f"{n}/v2.0/networks", json={"network": {"name": "bench"}},
                              headers=stack.member), 201)["network"]  # fmt: skip
    cidr = f"10.215.{secrets.randbelow(200) + 20}.0/24"
    body = {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}}
    _ok(await http.post(f"{n}/v2.0/subnets", json=body, headers=stack.member), 201)
    return {"flavor": flavor_id["flavor"]["id"], "image": images["aki"], "network": net["id"]}


async def api_batch(
    stack: Stack, http: httpx.AsyncClient, cloud: dict[str, str], count: int
) -> list[Boot]:
    """``count`` servers POSTed at once; each one's times until ACTIVE and its DHCP line."""
    started = time.perf_counter()

    async def create(i: int) -> Boot:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        body = {
            "server": {
                "name": name,
                "flavorRef": cloud["flavor"],
                "imageRef": cloud["image"],
                "networks": [{"uuid": cloud["network"]}],
            }
        }
        resp = await http.post(f"{stack.compute_url}/v2.1/servers", json=body, headers=stack.member)
        sid = _ok(resp, 202)["server"]["id"]
        boot = Boot(name, stack.instances.console_log(sid), server_id=sid)
        boot.create_s = time.perf_counter() - started
        return boot

    boots = list(await asyncio.gather(*(create(i) for i in range(count))))
    by_id = {b.server_id: b for b in boots}
    deadline = started + BOOT_TIMEOUT_S
    listed = 0.0
    while any(b.active_s is None or b.dhcp_s is None for b in boots):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"servers not ACTIVE with DHCP after {BOOT_TIMEOUT_S:.0f}s")
        now = time.perf_counter() - started
        if any(b.active_s is None for b in boots) and now - listed >= API_POLL_S:
            listed = now
            resp = await http.get(f"{stack.compute_url}/v2.1/servers/detail", headers=stack.member)
            for server in _ok(resp, 200)["servers"]:
                boot = by_id.get(server["id"])
                if boot is None or boot.active_s is not None:
                    continue
                if server["status"] == "ACTIVE":
                    boot.active_s = now
                elif server["status"] == "ERROR":
                    raise RuntimeError(f"server {server['id']} ERROR: {server.get('fault')}")
        for boot in boots:
            boot.check_console(now)
        await asyncio.sleep(POLL_S)
    return boots


async def api_console_has_dhcp(stack: Stack, http: httpx.AsyncClient, boot: Boot) -> bool:
    url = f"{stack.compute_url}/v2.1/servers/{boot.server_id}/action"
    body = {"os-getConsoleOutput": {"length": 100}}
    output = _ok(await http.post(url, json=body, headers=stack.member), 200)["output"]
    return f"stackling-guest: ip {boot.address}" in output


async def api_delete(stack: Stack, http: httpx.AsyncClient, boots: list[Boot]) -> None:
    for boot in boots:
        url = f"{stack.compute_url}/v2.1/servers/{boot.server_id}"
        _ok(await http.delete(url, headers=stack.member), 204)
    deadline = time.monotonic() + 120
    pending = [b.server_id for b in boots]
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"servers not gone after delete: {pending}")
        still = []
        for sid in pending:
            resp = await http.get(f"{stack.compute_url}/v2.1/servers/{sid}", headers=stack.member)
            if resp.status_code != 404:
                still.append(sid)
        pending = still
        await asyncio.sleep(0.2)


async def delete_cloud(stack: Stack, http: httpx.AsyncClient, cloud: dict[str, str]) -> None:
    """The network (its bridge, netns and dnsmasq go with the agent's reconcile)."""
    url = f"{stack.network_url}/v2.0/networks/{cloud['network']}"
    _ok(await http.delete(url, headers=stack.member), 204)
    started = time.monotonic()
    wait_s = RECONCILE_S * 2 + 5
    while time.monotonic() - started < wait_s:
        if not await asyncio.to_thread(_agent_net, stack.prefix, stack.tmp):
            _progress(f"network deleted; host clear after {time.monotonic() - started:.1f}s")
            return
        await asyncio.sleep(0.5)
    _progress(f"network deleted; its bridge, netns or dnsmasq still there after {wait_s}s")


# ----------------------------------------------------------------------------- the floor


class Floor:
    """The same guest as a transient domain on a bridge with a plain dnsmasq: no services."""

    def __init__(self, tmp: Path, prefix: str, guests: int) -> None:
        self.dir = tmp / "floor"
        self.dir.mkdir(mode=0o755)
        self.prefix = prefix
        self.bridge = f"{prefix}fbr"
        self.subnet = f"10.214.{secrets.randbelow(200) + 20}"
        # One fixed address per guest, as network-svc's dnsmasq has: no ping-before-offer.
        self.macs = [
            "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
            for _ in range(guests)
        ]
        self.count = 0
        self.dnsmasq: subprocess.Popen[bytes] | None = None
        self.conn = libvirt.open(URI)

    def start(self) -> None:
        netlink.ensure_link(self.bridge, "bridge")
        netlink.ensure_addresses(self.bridge, [f"{self.subnet}.1/24"])
        netlink.set_up(self.bridge)
        hosts = self.dir / "hosts"
        hosts.write_text(
            "".join(f"{mac},{self.subnet}.{10 + i}\n" for i, mac in enumerate(self.macs))
        )
        self.dnsmasq = subprocess.Popen(
            [
                "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
                "--port=0", "--user=root", f"--interface={self.bridge}", "--bind-interfaces",
                "--except-interface=lo", f"--dhcp-range={self.subnet}.0,static,255.255.255.0,1h",
                f"--dhcp-hostsfile={hosts}", f"--dhcp-leasefile={self.dir}/leases",
                f"--pid-file={self.dir}/dnsmasq.pid",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _xml(self, name: str, index: int) -> str:
        return dx.render(
            dx.DomainDef(
                name=name,
                uuid=str(uuid.uuid4()),
                vcpus=VCPUS,
                memory_mib=RAM_MB,
                os=dx.OsDef(
                    kernel=str(GUEST_DIR / "vmlinuz"),
                    initrd=str(GUEST_DIR / "initramfs.gz"),
                    cmdline=CMDLINE,
                ),
                interfaces=[
                    dx.BridgeInterface(self.macs[index - 1], self.bridge, f"{self.prefix}ft{index}")
                ],
                console_log=str(self.dir / f"{name}.log"),
            )
        )

    async def batch(self, count: int) -> list[Boot]:
        """``count`` ``createXML`` at once, then until each guest printed its DHCP line."""
        boots, xmls = [], []
        for _ in range(count):
            self.count += 1
            name = f"{self.prefix}-floor-{self.count}"
            xmls.append(self._xml(name, self.count))
            boots.append(Boot(name, self.dir / f"{name}.log"))
        started = time.perf_counter()

        async def create(boot: Boot, xml: str) -> None:
            await asyncio.to_thread(self.conn.createXML, xml, 0)
            boot.active_s = time.perf_counter() - started  # the domain runs

        await asyncio.gather(*(create(b, x) for b, x in zip(boots, xmls, strict=True)))
        deadline = started + BOOT_TIMEOUT_S
        while any(b.dhcp_s is None for b in boots):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"floor guests without DHCP after {BOOT_TIMEOUT_S:.0f}s")
            now = time.perf_counter() - started
            for boot in boots:
                boot.check_console(now)
            await asyncio.sleep(POLL_S)
        return boots

    def destroy(self, boots: list[Boot]) -> None:
        for boot in boots:
            try:
                self.conn.lookupByName(boot.name).destroy()  # transient: gone with it
            except libvirt.libvirtError:
                pass

    def stop(self) -> None:
        if self.dnsmasq is not None and self.dnsmasq.poll() is None:
            self.dnsmasq.send_signal(signal.SIGTERM)
            self.dnsmasq.wait(timeout=10)
        netlink.delete_link(self.bridge)
        self.conn.close()


# ----------------------------------------------------------------------------- the host


def _owned_net(prefix: str, state_dir: Path) -> list[str]:
    """Links, namespaces, rules, member sets and dnsmasq of the prefix (network-svc's list)."""
    found = net_leftovers(prefix, state_dir)
    return [f"{kind} {name}" for kind, names in found.items() for name in names]


def _agent_net(prefix: str, tmp: Path) -> list[str]:
    """What network-agent made for the bench's network (the floor's bridge is not)."""
    heads = tuple(prefix + kind for kind in ("brq", "tap", "ns-", "vxlan-", "qdhcp-"))
    found = net_leftovers(prefix, tmp / "network-agent")
    named = [f"link {n}" for n in found["links"]] + [f"netns {n}" for n in found["netns"]]
    return [x for x in named if x.split()[1].startswith(heads)] + [
        f"dnsmasq {pid}" for pid in found["dnsmasq"]
    ]


def _owned_libvirt(prefix: str) -> list[str]:
    conn = libvirt.open(URI)
    try:
        found = [f"domain {d.name()}" for d in conn.listAllDomains(0)]
        found = [x for x in found if x.startswith(f"domain {prefix}-")]
        usages = [s.usageID() or "" for s in conn.listAllSecrets(0)]
        return found + [f"secret {u}" for u in usages if u.startswith(prefix)]
    finally:
        conn.close()


def leftovers(prefix: str, tmp: Path) -> list[str]:
    """Everything on the host that carries the run's prefix or lives in its directory."""
    found: list[str] = []
    checks: list[Callable[[], list[str]]] = [
        lambda: _owned_libvirt(prefix),
        lambda: _owned_net(prefix, tmp),
    ]
    for check in checks:
        try:
            found += check()
        except Exception as exc:  # a check that cannot run counts as a leftover
            found.append(f"unchecked: {exc}")
    instances = tmp / "instances"
    if instances.exists():
        found += [f"file {p}" for p in instances.iterdir() if p.name != "_base"]
    return found


def sweep(prefix: str, tmp: Path) -> None:
    """Removes whatever :func:`leftovers` finds, by name; never raises."""
    steps: list[Callable[[], None]] = [
        lambda: _sweep_libvirt(prefix),
        lambda: net_sweep(prefix, tmp),
    ]
    for step in steps:
        try:
            step()
        except Exception as exc:  # a sweep does what it can, then reports
            print(f"sweep: {exc}", file=sys.stderr)


def _sweep_libvirt(prefix: str) -> None:
    conn = libvirt.open(URI)
    try:
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(f"{prefix}-"):
                if dom.isActive():
                    dom.destroy()
                if dom.isPersistent():
                    dom.undefine()
        for secret in conn.listAllSecrets(0):
            if (secret.usageID() or "").startswith(prefix):
                secret.undefine()
    finally:
        conn.close()


# ----------------------------------------------------------------------------- the run


async def measure(stack: Stack, floor: Floor, opts: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as http:
        cloud = await prepare_cloud(stack, http)
        try:
            return await _measure(stack, floor, http, cloud, opts)
        finally:
            await delete_cloud(stack, http, cloud)


async def _measure(
    stack: Stack,
    floor: Floor,
    http: httpx.AsyncClient,
    cloud: dict[str, str],
    opts: argparse.Namespace,
) -> dict[str, Any]:
    cpu: dict[str, float] = {}

    async def api(count: int) -> list[Boot]:
        before = cpu_seconds(stack.pids)
        boots = await api_batch(stack, http, cloud, count)
        after = cpu_seconds(stack.pids)
        cpu.clear()
        cpu.update({k: round(after[k] - before[k], 2) for k in after if k in before})
        try:
            if count == 1 and not await api_console_has_dhcp(stack, http, boots[0]):
                raise RuntimeError("os-getConsoleOutput does not show the DHCP line")
        finally:
            await api_delete(stack, http, boots)
        return boots

    async def bare(count: int) -> list[Boot]:
        boots: list[Boot] = []
        try:
            boots = await floor.batch(count)
        finally:
            await asyncio.to_thread(floor.destroy, boots or _floor_names(floor, count))
        return boots

    # Warm-up: the network's bridge and dnsmasq, the agent's image cache, the page cache.
    for _ in range(opts.warmup):
        await bare(1)
        await api(1)
        _progress("warm-up boots done")
    ours: list[Boot] = []
    base: list[Boot] = []
    single_cpu: list[dict[str, float]] = []
    for i in range(opts.servers):
        # Interleaved, in alternating order, so that other load hits both alike.
        if i % 2 == 0:
            base += await bare(1)
            await _settle()
            ours += await api(1)
        else:
            ours += await api(1)
            await _settle()
            base += await bare(1)
        single_cpu.append(dict(cpu))
        await _settle()
        _progress(
            f"boot {i + 1}: floor dhcp {base[-1].dhcp_s:.2f}s; api create {ours[-1].create_s:.3f}s"
            f" active {ours[-1].active_s:.2f}s dhcp {ours[-1].dhcp_s:.2f}s"
            f" (guest init: floor {base[-1].init_s or 0:.2f}s, api {ours[-1].init_s or 0:.2f}s)"
        )
    walls: dict[str, list[float]] = {"floor": [], "api": [], "api_active": []}
    each: dict[str, list[Any]] = {"floor": [], "api": [], "api_cpu": []}
    for i in range(opts.rounds):
        for side in ("floor", "api") if i % 2 == 0 else ("api", "floor"):
            boots = await (bare(opts.burst) if side == "floor" else api(opts.burst))
            await _settle()
            walls[side].append(max(b.dhcp_s or 0 for b in boots))
            if side == "api":
                walls["api_active"].append(max(b.active_s or 0 for b in boots))
                each["api_cpu"].append(dict(cpu))
            each[side].append([_times(b) for b in boots])
            _progress(f"{side} burst of {opts.burst}: all DHCP {walls[side][-1]:.2f}s")
    return {
        "single": {
            "servers": opts.servers,
            "api_create_p50_s": _p50([b.create_s for b in ours if b.create_s is not None]),
            "api_active_p50_s": _p50([b.active_s for b in ours if b.active_s is not None]),
            "api_dhcp_p50_s": _p50([b.dhcp_s for b in ours if b.dhcp_s is not None]),
            "api_init_p50_s": _p50([b.init_s for b in ours if b.init_s is not None]),
            "floor_running_p50_s": _p50([b.active_s for b in base if b.active_s is not None]),
            "floor_init_p50_s": _p50([b.init_s for b in base if b.init_s is not None]),
            "floor_dhcp_p50_s": _p50([b.dhcp_s for b in base if b.dhcp_s is not None]),
            "api_service_cpu_s": single_cpu,
        },
        "burst": {
            "servers": opts.burst,
            "rounds": opts.rounds,
            "api_all_active_s": _p50(walls["api_active"]),
            "api_all_dhcp_s": _p50(walls["api"]),
            "floor_all_dhcp_s": _p50(walls["floor"]),
            "api_each": each["api"],
            # CPU seconds the services spent while a burst booted (the guests' CPUs too).
            "api_service_cpu_s": each["api_cpu"],
            "floor_each": each["floor"],
        },
    }


def _times(boot: Boot) -> dict[str, float | None]:
    names = ("create_s", "active_s", "init_s", "dhcp_s")
    return {n: round(v, 3) for n in names if (v := getattr(boot, n)) is not None}


def _progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def _floor_names(floor: Floor, count: int) -> list[Boot]:
    """The floor's most recent names, for a batch that failed before it returned."""
    first = max(1, floor.count - count + 1)
    names = [f"{floor.prefix}-floor-{i}" for i in range(first, floor.count + 1)]
    return [Boot(n, floor.dir / f"{n}.log") for n in names]


async def _settle() -> None:
    """Destroyed guests' QEMU processes exit asynchronously: let the CPU go quiet first."""
    await asyncio.sleep(1)


def ratios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    single, burst = results["single"], results["burst"]

    def ratio(value: float, target: float) -> dict[str, Any]:
        return {"value": round(value, 3), "target": f"<={target}", "pass": value <= target}

    return {
        "active_p50_s": {
            "value": single["api_active_p50_s"],
            "target": "<3.0",
            "pass": single["api_active_p50_s"] < 3.0,
        },
        "dhcp_over_floor": ratio(single["api_dhcp_p50_s"] / single["floor_dhcp_p50_s"], 1.3),
        "burst_over_floor": ratio(burst["api_all_dhcp_s"] / burst["floor_all_dhcp_s"], 1.2),
    }


def report(results: dict[str, Any], left: list[str], left_by_stack: list[str]) -> None:
    single, burst = results["single"], results["burst"]
    rows = [
        (f"API create (POST -> 202) p50, {single['servers']} servers", single["api_create_p50_s"]),
        ("boot -> ACTIVE p50", single["api_active_p50_s"]),
        ("boot -> DHCP in guest p50", single["api_dhcp_p50_s"]),
        ("boot -> guest init p50", single["api_init_p50_s"]),
        ("floor: createXML -> running p50", single["floor_running_p50_s"]),
        ("floor: createXML -> guest init p50", single["floor_init_p50_s"]),
        ("floor: createXML -> DHCP in guest p50", single["floor_dhcp_p50_s"]),
        (f"{burst['servers']} at once via API -> all ACTIVE", burst["api_all_active_s"]),
        (f"{burst['servers']} at once via API -> all DHCP", burst["api_all_dhcp_s"]),
        (f"floor: {burst['servers']} createXML at once -> all DHCP", burst["floor_all_dhcp_s"]),
    ]
    print(f"{'measure':<48}{'seconds':>10}")
    for name, value in rows:
        print(f"{name:<48}{value:>10.3f}")
    for name, cell in results["ratios"].items():
        verdict = "PASS" if cell["pass"] else "FAIL"
        print(f"{name:<22} {cell['value']:>8}  target {cell['target']:<6} {verdict}")
    if left_by_stack:
        print(f"left by the stack after its own cleanup: {left_by_stack}", file=sys.stderr)
    print(f"left on host: {len(left)}")


def _run(opts: argparse.Namespace, procs: Processes, tmp: Path, prefix: str, amqp: str) -> Any:
    stack = start_stack(procs, tmp, prefix, amqp)
    floor = Floor(tmp, prefix, opts.warmup + opts.servers + opts.rounds * opts.burst)
    try:
        floor.start()
        return asyncio.run(measure(stack, floor, opts))
    except BaseException:
        for log in stack.logs:
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-6000:]}", file=sys.stderr)
        raise
    finally:
        floor.stop()


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--servers", type=int, default=5, help="boots one at a time")
    parser.add_argument("--burst", type=int, default=10, help="boots at once")
    parser.add_argument("--rounds", type=int, default=1, help="bursts of each (median)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured boots of each first")
    opts = parser.parse_args()
    for tool in ("qemu-system-x86_64", "dnsmasq", "genisoimage", "rabbitmqctl", "iptables"):
        if shutil.which(tool) is None:
            print(f"compute_bench: {tool} is not installed", file=sys.stderr)
            return 1
    if not (GUEST_DIR / "vmlinuz").exists():
        print(f"compute_bench: no guest in {GUEST_DIR} (make image)", file=sys.stderr)
        return 1
    # "cb" + 3: no other run's prefix ("ct…-", "z…", "y…", "e…", "b…") starts with it.
    prefix = "cb" + "".join(
        secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3)
    )
    tmp = Path(tempfile.mkdtemp(prefix=f"stackling-computebench-{prefix}-"))
    tmp.chmod(0o755)  # QEMU (its own user) reads the kernel copies under it
    vhost = f"cbench-{prefix}-{uuid.uuid4().hex[:6]}"
    signal.signal(signal.SIGTERM, _interrupt)  # a timeout's SIGTERM still cleans the host
    procs = Processes()
    results: dict[str, Any] | None = None
    failed: BaseException | None = None
    try:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        results = _run(opts, procs, tmp, prefix, f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    except BaseException as exc:  # reported below, after the cleanup
        failed = exc
    finally:
        procs.stop()
        left_by_stack = leftovers(prefix, tmp)
        sweep(prefix, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        left = leftovers(prefix, tmp)
        try:
            _rabbitmqctl("delete_vhost", vhost)
        except subprocess.SubprocessError:
            left.append(f"vhost {vhost}")
    if failed is not None or results is None:
        print(f"compute_bench failed: {failed!r}", file=sys.stderr)
        print(f"left on host: {len(left)}")
        return 1
    results["ratios"] = ratios(results)
    report(results, left, left_by_stack)
    out = {"bench": "compute", **results, "left_on_host": left, "left_by_stack": left_by_stack}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
