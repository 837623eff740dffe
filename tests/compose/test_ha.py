"""The ha profile: a three-node RabbitMQ cluster and two replicas of each API.

One compose project for the module, ``--profile ha`` with ``deploy/compose/ha.env``:

- three RabbitMQ nodes in one cluster; the RPC queues and the event groups' queues are
  quorum queues with a replica on each node;
- one RabbitMQ node and one compute-api replica SIGKILLed while five boots build: each
  server ends ACTIVE or in ERROR with a fault, every server's create and delete events
  reach a subscriber once, nothing of the project is left, the host is clean and
  ``audit`` of every service is clean;
- what the profile costs: boots per minute and the RPC round trip's median, here and in
  the single-node cloud (``test_cloud``), written to ``build/compose-logs/cost-ha.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_faults
from cloud import (
    AUDITED,
    BUILD_TIMEOUT_S,
    Cloud,
    as_member,
    assert_host_clean,
    assert_project_empty,
    boot,
    delete_servers,
    flavor_of,
    run_all,
    tiny_image_of,
    wait_until,
)
from compose import (
    CLOUD_ENV,
    LOGS_DIR,
    SERVICE_IMAGES,
    Project,
    boot_rate,
    compose_project,
    rpc_p50,
)

NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
REPLICAS = ("compute-api-2", "network-api-2", "volume-api-2")
SSE_QUEUES = "gateway.sse."
BOOTS = 5
RATE_BOOTS = 6


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    for project in compose_project(tmp_path_factory, "ha", CLOUD_ENV, ("ha",)):
        started = time.monotonic()
        project.up()
        print(f"docker-compose --profile ha up -d: healthy after {time.monotonic() - started:.1f}s")
        yield project


@pytest.fixture(scope="module")
def cloud(project: Project) -> Iterator[Cloud]:
    yield from as_member(project, project.lab, project.amqp_url)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_image(cloud: Cloud) -> Iterator[str]:
    yield from tiny_image_of(cloud)


@pytest.fixture(scope="module")
def flavor(cloud: Cloud) -> Iterator[str]:
    yield from flavor_of(cloud)


def rabbitmqctl(project: Project, *args: str) -> Any:
    out = project.compose(
        "exec", "-T", "rabbitmq", "rabbitmqctl", "-q", *args, "--formatter", "json"
    ).stdout
    return json.loads(out)


def test_three_nodes_in_one_cluster_and_quorum_queues_on_each(
    project: Project, cloud: Cloud
) -> None:
    assert project.running() == {*NODES, "postgres", *SERVICE_IMAGES, *REPLICAS}
    assert project.state("rabbitmq-cluster") == "exited"
    status = rabbitmqctl(project, "cluster_status")
    assert sorted(status["running_nodes"]) == sorted(f"rabbit@{n}" for n in NODES), status
    queues = rabbitmqctl(project, "list_queues", "name", "type", "members")
    by_name = {q["name"]: q for q in queues}
    # The APIs' RPC queues, the agents' and the event groups': quorum, on every node. The
    # gateway's event stream reads through an exclusive, auto-deleted queue per process
    # (it lives and dies with its connection: nothing to replicate).
    transient = [n for n in by_name if n.startswith(SSE_QUEUES)]
    assert all(by_name[n]["type"] == "classic" for n in transient), transient
    wanted = [n for n in by_name if n not in transient]
    assert wanted, by_name
    for name in wanted:
        queue = by_name[name]
        assert queue["type"] == "quorum", queue
        assert sorted(queue["members"]) == sorted(f"rabbit@{n}" for n in NODES), queue
    print(f"{len(wanted)} quorum queues, each on {len(NODES)} nodes:", sorted(wanted))


@pytest.mark.timeout(BUILD_TIMEOUT_S + test_faults.SWEEP_S + 420)
def test_a_rabbitmq_node_and_an_api_replica_killed_during_boots_lose_nothing(
    project: Project, cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    group = f"compose-ha-tap-{project.lab.prefix}"
    patterns = ["compute.server.create.*", "compute.server.delete.*"]
    tap = test_faults.EventTap(project.amqp_url, group, patterns)
    undo: list[Callable[[], Any]] = []
    servers: list[str] = []
    try:
        net_id = test_faults.add_network(cloud, "10.84.0.0/24", undo)
        undo.append(lambda: delete_servers(cloud, servers))
        began = time.monotonic()
        for index in range(BOOTS):
            servers.append(
                boot(cloud, f"ha-{index}", tiny_image, flavor, networks=[{"uuid": net_id}])
            )
        project.kill("rabbitmq-2")
        project.kill("compute-api-2")
        views = wait_until(
            "no server in BUILD",
            test_faults.Settled(cloud, servers),
            BUILD_TIMEOUT_S + test_faults.SWEEP_S,
        )
        print(f"settled in {time.monotonic() - began:.1f}s:", test_faults.outcome(views))
        for sid, view in views.items():
            if view["status"] == "ERROR":
                assert view.get("fault", {}).get("message"), (sid, view)
        project.start("rabbitmq-2")
        project.start("compute-api-2")
        run_all(undo)
        undo.clear()
        complete = False
        try:
            complete = wait_until("every event", lambda: tap.complete(servers), 60)
        finally:
            counts = tap.per_server(servers)
        assert complete, counts
        assert counts == {sid: dict.fromkeys(test_faults.SERVER_EVENTS, 1) for sid in servers}
    finally:
        run_all(undo)
        tap.delete()
    assert_project_empty(cloud)
    assert_host_clean(project.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}


@pytest.mark.timeout(600)
def test_the_cost_of_the_ha_profile_is_measured(
    project: Project, cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    undo: list[Callable[[], Any]] = []
    try:
        net_id = test_faults.add_network(cloud, "10.85.0.0/24", undo)
        figures = {
            "boots_per_minute": round(boot_rate(cloud, tiny_image, flavor, net_id, RATE_BOOTS), 1),
            # Through the published node, one call in flight: a quorum queue (as the
            # profile runs RPC), and a classic one on the same cluster for comparison.
            "rpc_p50_ms_quorum": rpc_p50(project.amqp_url, "quorum"),
            "rpc_p50_ms_classic": rpc_p50(project.amqp_url, "classic"),
        }
    finally:
        run_all(undo)
    print("ha profile:", figures)
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    (LOGS_DIR / "cost-ha.json").write_text(json.dumps(figures))
    assert figures["boots_per_minute"] > 0
