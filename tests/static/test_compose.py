"""Static checks of docker-compose.yml and the Procfile: no Docker engine needed.

Every CI machine has Debian's docker-compose 1.29 (deploy/setup.sh installs it), which
validates the file offline; the rest reads the YAML and the repo's pyproject.toml files.
"""

from __future__ import annotations

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


def _load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


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
def test_agents_run_privileged_on_the_host_and_reach_the_broker(name: str) -> None:
    spec = SERVICES[name]
    assert spec.get("privileged") is True and spec.get("user") == "root", name
    env = _environment(spec)
    assert not any(key.endswith("_DB_URL") for key in env), f"{name}: agents keep no database"
    # On the host's network the broker is the port rabbitmq publishes on loopback.
    assert "@127.0.0.1:5672" in env["STACKLING_AMQP_URL"], name
    published = SERVICES["rabbitmq"].get("ports") or []
    assert any(str(p).startswith("127.0.0.1:5672:") for p in published)
    assert _depends_on(spec) == {"rabbitmq"}, f"{name}: an agent needs only the broker"


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
