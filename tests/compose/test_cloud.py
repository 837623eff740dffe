"""The whole cloud from docker-compose.yml, on this machine, through the published gateway.

One compose project for the module (``docker-compose up -d`` of every service: RabbitMQ,
PostgreSQL, the gateway, the three APIs and the three agents), from the images ``make
images`` built here:

- every service runs and is healthy; the images are the locally built ones, with no
  compiler in them;
- the e2e suite's tenant scenario (``test_real_servers``: a network behind a router, two
  stackling-tiny guests that ping each other and a second project's that they must not
  reach, a floating IP reached from outside, the ``openstack`` CLI, a volume written by
  one guest and read by the other, every lifecycle event, audit clean) passes against the
  containers, through the gateway's published port;
- stopping and starting any one container (each API, each agent, RabbitMQ, PostgreSQL)
  while boots are under way ends every server ACTIVE or in ERROR with a fault; every
  server's create and delete events reach a subscriber once; nothing of the project is
  left and ``stackling audit`` of every service is clean;
- the figures the ha profile's cost is measured against (boots per minute, the RPC round
  trip's median), written to ``build/compose-logs/cost-single.json``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_faults
import test_real_servers
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

EVERY_SERVICE = {"rabbitmq", "postgres", *SERVICE_IMAGES}
# Each container stopped and started again while two boots build.
RESTARTED = (
    "compute-api", "network-api", "volume-api",
    "compute-agent", "network-agent", "volume-agent",
    "rabbitmq", "postgres",
)  # fmt: skip
BOOTS_PER_RESTART = 2
DOWN_S = 3.0
RATE_BOOTS = 6  # as in test_ha
COMPILERS = ("gcc", "cc", "c++", "make", "ld")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    for project in compose_project(tmp_path_factory, env=CLOUD_ENV):
        started = time.monotonic()
        project.up()
        print(f"docker-compose up -d: healthy after {time.monotonic() - started:.1f}s")
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


def test_every_service_runs_healthy_from_images_built_here_without_compilers(
    project: Project, cloud: Cloud
) -> None:
    assert project.running() == EVERY_SERVICE
    states = {name: project.state(name) for name in sorted(EVERY_SERVICE)}
    healthy = {n: s for n, s in states.items() if s == "running (healthy)"}
    # The agents have no HTTP side: their health is their heartbeat (as_member waited).
    assert set(healthy) == EVERY_SERVICE - {"compute-agent", "network-agent", "volume-agent"}
    assert project.state("prepare") == "exited"
    for name in SERVICE_IMAGES:
        image = f"stackling/{name}:latest"
        found = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
             f"command -v {' '.join(COMPILERS)} || true"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.split()  # fmt: skip
        assert found == [], f"{image} has {found}"


@pytest.mark.timeout(test_real_servers.SCENARIO_TIMEOUT_S)
def test_the_e2e_tenant_scenario_passes_through_the_published_gateway(
    cloud: Cloud, tiny_image: str, flavor: str, tmp_path: Path
) -> None:
    test_real_servers.test_a_tenant_scenario_works_end_to_end_and_another_project_sees_none_of_it(
        cloud, tiny_image, flavor, tmp_path
    )


@pytest.mark.timeout(len(RESTARTED) * (BUILD_TIMEOUT_S + test_faults.SWEEP_S + 60) + 300)
def test_any_one_container_restarted_during_boots_loses_nothing(
    project: Project, cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    group = f"compose-tap-{project.lab.prefix}"
    patterns = ["compute.server.create.*", "compute.server.delete.*"]
    tap = test_faults.EventTap(project.amqp_url, group, patterns)
    undo: list[Callable[[], Any]] = []
    servers: list[str] = []
    outcomes: dict[str, dict[str, str]] = {}
    try:
        net_id = test_faults.add_network(cloud, "10.82.0.0/24", undo)
        undo.append(lambda: delete_servers(cloud, servers))
        for target in RESTARTED:
            batch = [
                boot(cloud, f"{target}-{i}", tiny_image, flavor, networks=[{"uuid": net_id}])
                for i in range(BOOTS_PER_RESTART)
            ]
            servers.extend(batch)
            began = time.monotonic()
            project.stop(target)
            time.sleep(DOWN_S)
            project.start(target)
            views = wait_until(
                f"no server in BUILD after {target}'s restart",
                test_faults.Settled(cloud, batch),
                BUILD_TIMEOUT_S + test_faults.SWEEP_S,
            )
            outcomes[target] = test_faults.outcome(views)
            print(f"{target}: restarted, settled in {time.monotonic() - began:.1f}s:",
                  outcomes[target])  # fmt: skip
            for sid, view in views.items():
                if view["status"] == "ERROR":
                    assert view.get("fault", {}).get("message"), (target, sid, view)
            delete_servers(cloud, batch)  # within the project's quota of 10 instances
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
        print("after each restart:", outcomes)
        run_all(undo)
        tap.delete()
    assert_project_empty(cloud)
    assert_host_clean(project.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}


@pytest.mark.timeout(600)
def test_the_single_node_figures_the_ha_profile_is_compared_with(
    project: Project, cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    undo: list[Callable[[], Any]] = []
    try:
        net_id = test_faults.add_network(cloud, "10.85.0.0/24", undo)
        figures = {
            "boots_per_minute": round(boot_rate(cloud, tiny_image, flavor, net_id, RATE_BOOTS), 1),
            "rpc_p50_ms_classic": rpc_p50(project.amqp_url, "classic"),
            "rpc_p50_ms_quorum": rpc_p50(project.amqp_url, "quorum"),
        }
    finally:
        run_all(undo)
    print("single node:", figures)
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    (LOGS_DIR / "cost-single.json").write_text(json.dumps(figures))
    assert figures["boots_per_minute"] > 0
