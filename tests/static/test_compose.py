"""Static checks of docker-compose.yml and the Procfile: no Docker engine needed.

Every CI machine has Debian's docker-compose 1.29 (deploy/setup.sh installs it), which
validates the file offline; the rest reads the YAML and the repo's pyproject.toml files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
PG_INIT_SCRIPT = ROOT / "deploy" / "postgres-init" / "10-stackling-databases.sh"
# Bind-mount sources under these are made at set-up time (keys), not kept in the repo.
GENERATED_DIRS = ("data",)


# ``${NAME:-default}`` / ``${NAME-default}``: the file's variables, read at their defaults.
_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+:?-([^}]*)\}")


def _defaults(value: Any) -> Any:
    """``value`` with every variable replaced by its default, as with an empty environment."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: m[1], value)
    if isinstance(value, list):
        return [_defaults(v) for v in value]
    if isinstance(value, dict):
        return {k: _defaults(v) for k, v in value.items()}
    return value


def _load_compose() -> dict[str, Any]:
    return _defaults(yaml.safe_load(COMPOSE_FILE.read_text()))


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Agents drive the host: they share its network; API processes have their own database.
AGENT_SERVICES = sorted(n for n, spec in SERVICES.items() if spec.get("network_mode") == "host")
BUILT = sorted(name for name, spec in SERVICES.items() if "build" in spec)
APP_SERVICES = sorted(set(BUILT) - set(AGENT_SERVICES))
INFRA_SERVICES = sorted(name for name, spec in SERVICES.items() if "build" not in spec)


def _console_scripts() -> set[str]:
    scripts: set[str] = set()
    for pyproject in ROOT.glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        scripts.update(project.get("scripts", {}))
    return scripts


def _environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _depends_on(spec: dict[str, Any]) -> set[str]:
    deps = spec.get("depends_on") or []
    return set(deps) if isinstance(deps, list) else set(deps.keys())


def _command(spec: dict[str, Any]) -> list[str]:
    command = spec.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def test_compose_has_app_agent_and_infra_services() -> None:
    assert {"rabbitmq", "postgres"} <= set(INFRA_SERVICES)
    assert {"gateway", "compute-api", "network-api", "volume-api"} <= set(APP_SERVICES)
    assert {"compute-agent", "network-agent", "volume-agent"} <= set(AGENT_SERVICES)


@pytest.mark.parametrize("name", AGENT_SERVICES)
def test_agents_run_as_root_with_net_and_sys_admin_on_the_host_and_reach_the_broker(
    name: str,
) -> None:
    spec = SERVICES[name]
    assert spec.get("user") == "root", name
    # Named capabilities rather than `privileged` (refused where the host lacks one).
    assert "privileged" not in spec, name
    assert {"NET_ADMIN", "SYS_ADMIN"} <= set(spec.get("cap_add") or []), name
    env = _environment(spec)
    assert not any(key.endswith("_DB_URL") for key in env), f"{name}: agents keep no database"
    # On the host's network the broker is the port rabbitmq publishes on loopback.
    assert "@127.0.0.1:5672" in env["STACKLING_AMQP_URL"], name
    published = SERVICES["rabbitmq"].get("ports") or []
    assert any(str(p).startswith("127.0.0.1:5672:") for p in published)
    assert _depends_on(spec) == {"rabbitmq"}, f"{name}: an agent needs only the broker"
    # The host's daemons open what the agent names by path: the same path inside and out.
    for volume in spec.get("volumes") or []:
        source, target = volume.split(":")[:2]
        assert source == target, f"{name}: {source} is mounted at {target}"


def test_docker_compose_config_validates() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (deploy/setup.sh installs it)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr or result.stdout


@pytest.mark.parametrize("name", BUILT)
def test_build_context_and_dockerfile_exist(name: str) -> None:
    build = SERVICES[name]["build"]
    build = {"context": build} if isinstance(build, str) else build
    context = ROOT / build["context"]
    assert context.is_dir(), f"{name}: build context {context} is missing"
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
    service_dir = (build.get("args") or {}).get("SERVICE_DIR")
    assert service_dir, f"{name}: build arg SERVICE_DIR is not set"
    assert (context / service_dir / "pyproject.toml").is_file(), (
        f"{name}: {service_dir}/pyproject.toml is missing"
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mount_sources_exist(name: str) -> None:
    for volume in SERVICES[name].get("volumes") or []:
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
        if not source.startswith("."):
            continue  # a named volume, or a host path its daemon makes (/run/netns, ...)
        path = (ROOT / source).resolve()
        if path.relative_to(ROOT).parts[:1] in {(d,) for d in GENERATED_DIRS}:
            continue
        assert path.exists(), f"{name}: bind-mount source {source} is missing"


def test_postgres_init_scripts_exist() -> None:
    mounts = [
        volume.split(":")[0]
        for volume in SERVICES["postgres"].get("volumes") or []
        if isinstance(volume, str) and "/docker-entrypoint-initdb.d" in volume
    ]
    assert mounts, "postgres has no /docker-entrypoint-initdb.d mount"
    for mount in mounts:
        scripts = sorted((ROOT / mount).glob("*.sh")) + sorted((ROOT / mount).glob("*.sql"))
        assert scripts, f"no init script in {mount}"
        for script in scripts:
            assert script.stat().st_size > 0, f"{script} is empty"


@pytest.mark.parametrize("name", BUILT)
def test_command_is_a_declared_console_script(name: str) -> None:
    command = _command(SERVICES[name])
    assert command, f"{name}: no command"
    scripts = _console_scripts()
    assert command[0] in scripts, (
        f"{name}: {command[0]!r} is not a [project.scripts] entry of any */pyproject.toml"
    )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_depends_only_on_infrastructure(name: str) -> None:
    others = _depends_on(SERVICES[name]) & set(APP_SERVICES)
    assert not others, f"{name} depends on other app services: {sorted(others)}"


def test_each_app_service_has_its_own_database() -> None:
    created = {
        f"stackling_{svc}"
        for svc in re.search(r"SERVICES=\(([^)]*)\)", PG_INIT_SCRIPT.read_text())[1].split()
    }
    databases: dict[str, str] = {}
    for name in APP_SERVICES:
        urls = [v for k, v in _environment(SERVICES[name]).items() if k.endswith("_DB_URL")]
        assert len(urls) == 1, f"{name}: expected one *_DB_URL, found {len(urls)}"
        assert "@postgres:" in urls[0], f"{name}: DB URL does not point at the postgres service"
        database = urls[0].rsplit("/", 1)[1].split("?", 1)[0]
        assert database in created, f"{name}: {database} is not created by {PG_INIT_SCRIPT.name}"
        databases[name] = database
    assert len(set(databases.values())) == len(databases), f"shared databases: {databases}"


def test_procfile_commands_are_declared_console_scripts() -> None:
    scripts = _console_scripts()
    entries = [
        line.split(":", 1)
        for line in PROCFILE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert entries, "Procfile has no process"
    for name, command in entries:
        program = command.split()[0]
        if program.startswith("deploy/"):
            script = ROOT / program  # a helper of the repo's own
            assert script.is_file() and os.access(script, os.X_OK), f"Procfile {name}: {program}"
            continue
        program = Path(program).name
        assert program in scripts, f"Procfile {name}: {program!r} is not a declared console script"


def test_images_are_local_builds_unless_one_variable_names_official_ones() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in INFRA_SERVICES:
        image = raw[name]["image"]
        if not image.startswith("${STACKLING_BASE_IMAGES"):
            # prepare (once, as root) and the ha profile's replicas: a service's own image
            assert image.startswith("stackling/"), (name, image)
            continue
        repo = image.rsplit(":", 1)[0].rsplit("/", 1)[1]
        assert image.startswith("${STACKLING_BASE_IMAGES:-stackling-local}/"), (name, image)
        assert (ROOT / "deploy" / "images" / f"{repo}.Dockerfile").is_file(), name
    for name in BUILT:
        assert raw[name]["image"] == f"stackling/{name}:${{STACKLING_IMAGE_TAG:-latest}}", name
        build = raw[name]["build"]
        assert build["args"]["BASE_IMAGES"] == "${STACKLING_BASE_IMAGES:-stackling-local}", name
        # apt inside the build reaches Debian's mirrors through the host's network.
        assert build.get("network") == "host", name
    assert (ROOT / "deploy" / "images" / "python.Dockerfile").is_file()


@pytest.mark.parametrize("shape", sorted(p.stem for p in (ROOT / "deploy/compose").glob("*.env")))
def test_each_shape_lists_the_gateways_upstreams_among_the_files_services(shape: str) -> None:
    values = {}
    for line in (ROOT / "deploy" / "compose" / f"{shape}.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    for kind in ("COMPUTE", "NETWORK", "VOLUME"):
        urls = json.loads(values[f"STACKLING_{kind}_URLS"])
        hosts = {url.split("//", 1)[1].split(":", 1)[0] for url in urls}
        assert hosts <= set(SERVICES), (shape, kind, hosts)
        assert all(h.startswith(kind.lower() + "-api") for h in hosts), (shape, kind, hosts)


def test_make_has_images_and_test_compose_and_make_test_leaves_compose_out() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^images: ", makefile, re.M)
    assert re.search(r"^test-compose: .*\bimages\b", makefile, re.M)
    run_tests = (ROOT / "deploy" / "run-tests.sh").read_text()
    assert "tests/compose" not in run_tests, "make test would run the compose suite"


def test_the_ha_profile_adds_two_rabbitmq_nodes_and_a_second_replica_of_each_api() -> None:
    ha = {name for name, spec in SERVICES.items() if "ha" in (spec.get("profiles") or [])}
    replicas = {f"{name}-2" for name in ("compute-api", "network-api", "volume-api")}
    assert ha == {"rabbitmq-2", "rabbitmq-3", "rabbitmq-cluster"} | replicas
    for replica in replicas:
        first = SERVICES[replica.removesuffix("-2")]
        spec = SERVICES[replica]
        same = {k: v for k, v in spec.items() if k not in ("profiles", "depends_on")}
        assert same == {k: v for k, v in first.items() if k not in ("build", "depends_on")}
        assert set(_depends_on(spec)) == set(_depends_on(first)) | {"rabbitmq-cluster"}
    nodes = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
    cookies = {_environment(SERVICES[n])["RABBITMQ_ERLANG_COOKIE"] for n in nodes}
    assert len(cookies) == 1, "the nodes must share one Erlang cookie"
    for node in nodes:
        assert SERVICES[node]["hostname"] == node, node  # rabbit@<node> names its data
        aliases = SERVICES[node]["networks"]["default"]["aliases"]
        assert "rabbitmq-cluster" in aliases, node
    conf = (ROOT / "deploy" / "compose" / "rabbitmq-cluster.conf").read_text()
    assert all(f"rabbit@{n}" in conf for n in nodes)
