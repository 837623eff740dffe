"""Faults across services: the whole cloud keeps its promises when a part of it dies.

One stack for the module, as in ``test_real_servers``, but on a RabbitMQ node of its own
(``RabbitNode``, not the machine's broker, so it may be restarted) and with two
compute-api replicas behind the gateway. As a member of a fresh project, on a network
of the test's own, with stackling-tiny servers of the tiny flavor:

- RabbitMQ restarted while five servers build: each ends ACTIVE or in ERROR with a fault
  before its build deadline is swept; every server's create and delete events reach a
  subscriber exactly once (no event lost, none published twice under a new id), the
  outboxes drain and no dead-letter queue holds anything.
- compute-agent SIGKILLed while it spawns a guest, then started again: the server ends
  ACTIVE with exactly one running domain, and its delete leaves no domain or disk.
- one of two compute-api replicas SIGKILLed while boots it took are in flight: the other
  finishes them (ACTIVE), and deleting them leaves nothing.

After each: nothing of the project in any service, nothing with the lab's prefix on the
host, ``audit`` of every service clean.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import aio_pika
import libvirt
import pytest
from cloud import (
    AUDITED,
    BUILD_TIMEOUT_S,
    Cloud,
    assert_host_clean,
    assert_project_empty,
    boot,
    call,
    delete_servers,
    flavor_of,
    need_host,
    restart,
    run_all,
    start_cloud,
    status,
    tiny_image_of,
    wait_until,
)
from stack import AGENTS, LIBVIRT_URI, SERVICES, replica

from common_rpc import Broker
from common_rpc.broker import MessagingConfig
from common_rpc.events import Event, dead_letter_queue, declare_group_queue, group_queue
from common_rpc.testing import RabbitNode

SECOND_COMPUTE = replica("compute", 2)
# compute's sweeper passes every 30 s: a BUILD past its deadline is ERROR by the next one.
SWEEP_S = 30
SETTLED = ("ACTIVE", "ERROR")
SERVER_EVENTS = ("create.start", "create.end", "delete.start", "delete.end")
# A boot cut off by a fault may only end at its build deadline: past pytest.ini's 120 s.
FAULT_TEST_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    need_host()  # skip before the node's start costs anything
    node = RabbitNode.start_new()
    try:
        yield node
    finally:
        logs = tmp_path_factory.mktemp("rabbit-logs")  # kept by pytest, the node's go
        for log in (node.base / "log").glob("*.log"):
            shutil.copy(log, logs / log.name)
        node.destroy()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, rabbit: RabbitNode) -> Iterator[Cloud]:
    processes = (*SERVICES, SECOND_COMPUTE, *AGENTS)
    # Room for five tiny servers at once (the cloud's default host fits four).
    env = {"STACKLING_AMQP_URL": rabbit.url, "COMPUTE_AGENT_CAPACITY_VCPUS": "8"}
    for cloud in start_cloud(tmp_path_factory, env=env, processes=processes):
        yield dataclasses.replace(cloud, amqp_url=rabbit.url)  # the audit asks there too


@pytest.fixture(scope="module")
def tiny_image(cloud: Cloud) -> Iterator[str]:
    yield from tiny_image_of(cloud)


@pytest.fixture(scope="module")
def flavor(cloud: Cloud) -> Iterator[str]:
    yield from flavor_of(cloud)


def add_network(cloud: Cloud, cidr: str, undo: list[Callable[[], Any]]) -> str:
    """A network with one subnet, deleted by ``undo`` (after the servers made later)."""
    net = call(cloud.member, "POST", "/network/v2.0/networks", 201, json={"network": {}})
    net_id = str(net["network"]["id"])
    undo.append(lambda: cloud.member.delete(f"/network/v2.0/networks/{net_id}"))
    subnet = {"network_id": net_id, "cidr": cidr, "ip_version": 4}
    call(cloud.member, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
    return net_id


class Settled:
    """Every server's view once none is in BUILD any more; prints each state change."""

    def __init__(self, cloud: Cloud, servers: list[str]) -> None:
        self.cloud, self.servers = cloud, servers
        self.began = time.monotonic()
        self.states: dict[str, tuple[str, str | None]] = {}

    def __call__(self) -> dict[str, dict[str, Any]] | None:
        views = {}
        for sid in self.servers:
            view = self.cloud.server(sid)
            assert view is not None, f"server {sid} vanished"
            state = (view["status"], view["OS-EXT-STS:task_state"])
            if self.states.get(sid) != state:
                print(f"{time.monotonic() - self.began:6.1f}s {sid[:8]} {state}")
                self.states[sid] = state
            assert state[0] in ("BUILD", *SETTLED), (sid, state, view.get("fault"))
            views[sid] = view
        if any(v["status"] == "BUILD" for v in views.values()):
            return None
        return views


def outcome(views: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        sid: v["status"] + (f" ({v['fault']['message']})" if v.get("fault") else "")
        for sid, v in views.items()
    }


def domains_of(lab_prefix: str, server_id: str) -> list[tuple[str, bool]]:
    """(name, running) of every libvirt domain of the server, whatever its state."""
    conn = libvirt.open(LIBVIRT_URI)
    try:
        return [
            (d.name(), bool(d.isActive()))
            for d in conn.listAllDomains(0)
            if d.name().startswith(lab_prefix) and server_id in d.name()
        ]
    finally:
        conn.close()


class EventTap:
    """A durable queue of the test's own on the events exchange, declared before the boots.

    Drained with ``basic.get`` at the end: what a subscriber would have received, including
    what the outboxes held back while the broker was away.
    """

    def __init__(self, url: str, group: str, patterns: list[str]) -> None:
        self.url, self.group = url, group
        self.ids: dict[tuple[str, str], set[str]] = defaultdict(set)

        async def declare() -> None:
            broker = Broker(MessagingConfig(url=url), name="e2e-tap")
            try:
                await declare_group_queue(broker, group, patterns)
            finally:
                await broker.close()

        asyncio.run(declare())

    def drain(self) -> None:
        async def get_all() -> list[Event]:
            connection = await aio_pika.connect(self.url)
            async with connection:
                channel = await connection.channel()
                queue = await channel.declare_queue(group_queue(self.group), passive=True)
                events = []
                while (message := await queue.get(no_ack=True, fail=False)) is not None:
                    events.append(Event.from_bytes(message.body))
                return events

        for event in asyncio.run(get_all()):
            action = event.event_type.removeprefix("compute.server.")
            self.ids[(str(event.payload["id"]), action)].add(event.id)

    def per_server(self, servers: list[str]) -> dict[str, dict[str, int]]:
        """How many distinct events of each kind each server had."""
        return {sid: {a: len(self.ids[(sid, a)]) for a in SERVER_EVENTS} for sid in servers}

    def complete(self, servers: list[str]) -> bool:
        self.drain()
        return all(n > 0 for counts in self.per_server(servers).values() for n in counts.values())

    def delete(self) -> None:
        async def delete_queues() -> None:
            connection = await aio_pika.connect(self.url)
            async with connection:
                channel = await connection.channel()
                for name in (group_queue(self.group), dead_letter_queue(self.group)):
                    await channel.queue_delete(name)

        asyncio.run(delete_queues())


def boots_taken(cloud: Cloud, name: str) -> int:
    """Boots a compute-api process accepted so far (its access log, one JSON object a line)."""
    accepted = '"POST /v2.1/servers HTTP/1.1" 202'
    lines = cloud.stack.log_file(name).read_text(errors="replace").splitlines()
    messages = [json.loads(line)["message"] for line in lines if line.startswith("{")]
    return sum(1 for message in messages if accepted in message)


OUTBOX_DRAIN_S = 60.0  # a relay's publish may wait out its 30 s timeout once after an outage


def outbox_backlog(cloud: Cloud) -> dict[str, int]:
    """Events each service wrote and has not yet published (one SQLite file each)."""
    backlog = {}
    for svc in AUDITED:
        path = cloud.lab.root / f"{svc}.db"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            backlog[svc] = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    return backlog


def queue_depths(node: RabbitNode) -> dict[str, tuple[int, int]]:
    """name -> (ready, unacked) of every queue on the node."""
    out = subprocess.run(
        ["rabbitmqctl", "-n", node.name, "-q", "list_queues", "--no-table-headers",
         "name", "messages_ready", "messages_unacknowledged"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    depths = {}
    for line in out.splitlines():
        name, ready, unacked = line.split()
        depths[name] = (int(ready), int(unacked))
    return depths


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_rabbitmq_restarted_during_five_boots_each_ends_active_or_error_no_event_lost(
    cloud: Cloud, rabbit: RabbitNode, tiny_image: str, flavor: str
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    group = f"e2e-tap-{cloud.lab.prefix}"
    tap = EventTap(rabbit.url, group, ["compute.server.create.*", "compute.server.delete.*"])
    try:
        servers = five_boots_across_a_broker_restart(cloud, rabbit, tiny_image, flavor, timings)
        assert_project_empty(cloud)
        assert_host_clean(cloud.lab)
        timings["host clean"] = time.monotonic() - started
        assert cloud.findings() == {svc: [] for svc in AUDITED}

        # No event lost: each server's four events reached the tap, each exactly once (a
        # second id for one would be a second event published, not a redelivery).
        complete = False
        try:
            complete = wait_until("every event", lambda: tap.complete(servers), 30)
        finally:
            counts = tap.per_server(servers)
            print("events per server:", counts)
        assert complete
        assert counts == {sid: dict.fromkeys(SERVER_EVENTS, 1) for sid in servers}
    finally:
        tap.delete()
    # The outboxes drain once the cloud is quiet (a relay backs off after the outage, and
    # the deletes just wrote their events): nothing stays behind.
    drained = dict.fromkeys(AUDITED, 0)
    waited = time.monotonic()
    left = outbox_backlog(cloud)
    while left != drained and time.monotonic() - waited < OUTBOX_DRAIN_S:
        time.sleep(1)
        left = outbox_backlog(cloud)
    assert left == drained, f"not published after {OUTBOX_DRAIN_S}s: {left}"
    timings["outboxes drained"] = time.monotonic() - started
    dead = {n: d for n, d in queue_depths(rabbit).items() if n.endswith(".dead") and d != (0, 0)}
    assert dead == {}, f"dead-lettered: {dead}"
    timings["total"] = time.monotonic() - started
    print("broker restart timings:", {k: round(v, 1) for k, v in timings.items()})


def five_boots_across_a_broker_restart(
    cloud: Cloud, rabbit: RabbitNode, tiny_image: str, flavor: str, timings: dict[str, float]
) -> list[str]:
    """Five boots, the broker restarted as they build; all settled, then deleted."""
    undo: list[Callable[[], Any]] = []
    servers: list[str] = []
    try:
        net_id = add_network(cloud, "10.81.0.0/24", undo)
        tried: list[bool] = []  # a delete that failed below is not waited for twice
        undo.append(lambda: tried or delete_servers(cloud, servers))
        posted = time.monotonic()
        for index in range(5):
            servers.append(boot(cloud, f"rmq{index}", tiny_image, flavor,
                                networks=[{"uuid": net_id}]))  # fmt: skip
        timings["5 POSTs"] = time.monotonic() - posted
        building = {sid: cloud.server(sid)["OS-EXT-STS:task_state"] for sid in servers}  # type: ignore[index]
        rabbit.stop_app()
        timings["broker down at"] = time.monotonic() - posted
        time.sleep(2)
        rabbit.start_app()
        timings["broker back at"] = time.monotonic() - posted
        views = wait_until(
            "no server in BUILD", Settled(cloud, servers), BUILD_TIMEOUT_S + SWEEP_S, 1
        )
        timings["all settled"] = time.monotonic() - posted
        print("task states when the broker went down:", building)
        print("after the broker restart:", outcome(views))
        print("their domains:", {s[:8]: domains_of(cloud.lab.domain_prefix, s) for s in servers})
        for sid, view in views.items():
            if view["status"] == "ERROR":
                assert view.get("fault", {}).get("message"), (sid, view)
        deleting = time.monotonic()
        tried.append(True)
        delete_servers(cloud, servers)
        timings["deleted"] = time.monotonic() - deleting
    finally:
        run_all(undo)
    return servers


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_compute_agent_killed_mid_spawn_and_restarted_converges_to_one_domain_leaks_nothing(
    cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    undo: list[Callable[[], Any]] = []
    servers: list[str] = []
    try:
        net_id = add_network(cloud, "10.82.0.0/24", undo)
        undo.append(lambda: delete_servers(cloud, servers))
        undo.append(lambda: restart(cloud.stack, "compute-agent"))
        servers.append(boot(cloud, "agent-kill", tiny_image, flavor, networks=[{"uuid": net_id}]))
        sid = servers[0]
        server_dir = cloud.lab.instances_dir / sid

        # The agent works on the spawn once the server's directory exists; kill it then.
        wait_until("spawn begun", server_dir.exists, BUILD_TIMEOUT_S, every=0.02)
        cloud.stack.kill("compute-agent")
        killed = time.monotonic()
        at_kill = {
            "files": sorted(p.name for p in server_dir.iterdir()) if server_dir.exists() else [],
            "domains": domains_of(cloud.lab.domain_prefix, sid),
            "status": cloud.server(sid)["status"],  # type: ignore[index]
        }
        print("when compute-agent was killed:", at_kill)
        assert at_kill["status"] == "BUILD", at_kill  # killed mid-boot, not after it
        cloud.stack.start_one("compute-agent")
        view = wait_until("ACTIVE", lambda: status(cloud, sid, "ACTIVE"), BUILD_TIMEOUT_S)
        timings["kill->ACTIVE"] = time.monotonic() - killed
        assert view["OS-EXT-STS:power_state"] == 1, view
        domains = domains_of(cloud.lab.domain_prefix, sid)
        assert domains == [(f"{cloud.lab.domain_prefix}{sid}", True)], domains
        delete_servers(cloud, servers)
        assert domains_of(cloud.lab.domain_prefix, sid) == []
        assert not server_dir.exists(), sorted(p.name for p in server_dir.iterdir())
    finally:
        run_all(undo)
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}
    timings["total"] = time.monotonic() - started
    print("agent kill timings:", {k: round(v, 1) for k, v in timings.items()})


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_one_of_two_compute_api_replicas_killed_mid_boot_the_other_finishes_leaks_nothing(
    cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    undo: list[Callable[[], Any]] = []
    servers: list[str] = []
    try:
        net_id = add_network(cloud, "10.83.0.0/24", undo)
        undo.append(lambda: delete_servers(cloud, servers))
        undo.append(lambda: restart(cloud.stack, SECOND_COMPUTE))
        # The gateway takes turns between the replicas: of four POSTs, two land on each,
        # and a boot runs in the process that took its POST.
        before = boots_taken(cloud, SECOND_COMPUTE)
        for index in range(4):
            servers.append(boot(cloud, f"rep{index}", tiny_image, flavor,
                                networks=[{"uuid": net_id}]))  # fmt: skip
        cloud.stack.kill(SECOND_COMPUTE)
        assert boots_taken(cloud, SECOND_COMPUTE) > before, "the killed replica ran no boot"
        killed = time.monotonic()
        building = {sid: cloud.server(sid)["OS-EXT-STS:task_state"] for sid in servers}  # type: ignore[index]
        print(f"task states when {SECOND_COMPUTE} was killed:", building)
        views = wait_until(
            "no server in BUILD", Settled(cloud, servers), BUILD_TIMEOUT_S + SWEEP_S, 1
        )
        timings["kill->settled"] = time.monotonic() - killed
        print(f"after {SECOND_COMPUTE} was killed:", outcome(views))
        delete_servers(cloud, servers)
    finally:
        run_all(undo)
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}
    timings["total"] = time.monotonic() - started
    print("replica kill timings:", {k: round(v, 1) for k, v in timings.items()})
    # Last, so that a boot the survivor did not finish still shows whether its delete leaked.
    assert {sid: v["status"] for sid, v in views.items()} == dict.fromkeys(servers, "ACTIVE")
