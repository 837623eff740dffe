"""Each process, started from its console script, stops on what it cannot run without with
one line on stderr that says what is wrong and what to do, no traceback, and exit status 1:
a missing or broken identity key, a bad or unreachable database, a directory it cannot
write, a setting that does not parse.

Every run points at a broker port nobody listens on, a host name and data directory of its
own, and the agents at their fake drivers: a process that got past its checks would still
touch nothing shared, and is killed at the deadline.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from common_rpc.chassis.identity import generate_keypair
from common_rpc.testing import free_port

BIN = Path(sys.executable).parent
API = {
    "stackling-gateway": "GATEWAY",
    "compute-api": "COMPUTE",
    "network-api": "NETWORK",
    "volume-api": "VOLUME",
}
AGENTS = {"compute-agent": "COMPUTE", "network-agent": "NETWORK", "volume-agent": "VOLUME"}
DEADLINE_S = 60
SETUP_HINT = (
    "run `make setup DATA_DIR={d}` or set STACKLING_DATA_DIR to the data directory set-up wrote"
)
URL_FORMS = "sqlite+aiosqlite:////path/to/file.db or postgresql+asyncpg://user:password@host/dbname"


def start(script: str, data_dir: Path, **env: str) -> tuple[int, str, str]:
    """Run ``script`` to its end; (exit status, stdout, stderr)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STACKLING_", "GATEWAY_", "COMPUTE_", "NETWORK_", "VOLUME_"))
    }
    safe = {
        "STACKLING_DATA_DIR": str(data_dir),
        "STACKLING_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
        "STACKLING_HOST": f"startup-{secrets.token_hex(4)}",
        "STACKLING_LOG_JSON": "true",
        "NETWORK_AGENT_DRIVER": "fake",
        "VOLUME_AGENT_TARGET_HELPER": "fake",
        "COMPUTE_AGENT_LIBVIRT_URI": "test:///default",
        "COMPUTE_AGENT_VIRT_TYPE": "test",
        **{f"{prefix}_PORT": str(free_port()) for prefix in API.values()},
    }
    proc = subprocess.run(
        [str(BIN / script)],
        env=clean | safe | env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line(result: tuple[int, str, str], line: str) -> None:
    status, stdout, stderr = result
    assert "Traceback" not in stderr, stderr
    assert stderr.splitlines() == [line], stderr
    assert stdout == "" and status == 1, (status, stdout)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    generate_keypair(path / "keys")
    return path


@pytest.mark.parametrize("script", list(API))
def test_missing_identity_key(script: str, tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"  # set-up wrote no keys here
    key = "identity.key" if script == "stackling-gateway" else "identity.pub"
    assert_one_line(
        start(script, data),
        f"{script}: identity key {data}/keys/{key} not found; {SETUP_HINT.format(d=data)}",
    )


@pytest.mark.parametrize("script", list(API))
def test_broken_identity_key(script: str, data_dir: Path) -> None:
    key = "identity.key" if script == "stackling-gateway" else "identity.pub"
    (data_dir / "keys" / key).write_text("not a key\n")
    assert_one_line(
        start(script, data_dir),
        f"{script}: identity key {data_dir}/keys/{key} is not an Ed25519 key in PEM form; "
        f"move it away and {SETUP_HINT.format(d=data_dir)}",
    )


def test_key_path_that_is_a_directory(data_dir: Path) -> None:
    where = data_dir / "somewhere"
    where.mkdir()
    assert_one_line(
        start("network-api", data_dir, NETWORK_IDENTITY_PUBLIC_KEY_PATH=str(where)),
        f"network-api: identity key {where} is a directory, not a key file; "
        "fix NETWORK_IDENTITY_PUBLIC_KEY_PATH or STACKLING_IDENTITY_PUBLIC_KEY_PATH",
    )


@pytest.mark.parametrize("script", list(API))
def test_bad_database_url(script: str, data_dir: Path) -> None:
    variable = f"{API[script]}_DB_URL"
    assert_one_line(
        start(script, data_dir, **{variable: "mysql://root:secret@db/x"}),
        f"{script}: bad setting {variable}: driver 'mysql' is not supported; use {URL_FORMS}; "
        "fix it in the environment",
    )


def test_database_url_that_is_not_one(data_dir: Path) -> None:
    assert_one_line(
        start("volume-api", data_dir, VOLUME_DB_URL="not a url"),
        f"volume-api: bad setting VOLUME_DB_URL: not a database URL; use {URL_FORMS}; "
        "fix it in the environment",
    )


@pytest.mark.parametrize("script", ["stackling-gateway", "network-api"])
def test_unreachable_and_refusing_postgresql(script: str, data_dir: Path) -> None:
    variable = f"{API[script]}_DB_URL"
    port = free_port()
    assert_one_line(
        start(script, data_dir, **{variable: f"postgresql+asyncpg://u:secret@127.0.0.1:{port}/x"}),
        f"{script}: database postgresql+asyncpg://u:***@127.0.0.1:{port}/x unreachable: "
        f"Connect call failed ('127.0.0.1', {port}); start PostgreSQL (`make setup` starts a "
        f"local one) or fix {variable}",
    )
    role = f"nobody_{secrets.token_hex(3)}"
    assert_one_line(
        start(script, data_dir, **{variable: f"postgresql+asyncpg://{role}:pw@127.0.0.1/x"}),
        f"{script}: database postgresql+asyncpg://{role}:***@127.0.0.1/x refused the "
        f'connection: role "{role}" does not exist; fix {variable} (`make setup` creates the '
        "stackling_<service> roles and databases)",
    )


@pytest.mark.parametrize("script", ["volume-api", "compute-api"])
def test_sqlite_directory_that_cannot_be_written(script: str, data_dir: Path) -> None:
    blocker = data_dir / "a-file"
    blocker.write_text("")
    elsewhere = blocker / "data"  # under a regular file: not even root makes it
    service = API[script].lower()
    assert_one_line(
        start(
            script,
            elsewhere,
            STACKLING_IDENTITY_PUBLIC_KEY_PATH=str(data_dir / "keys" / "identity.pub"),
        ),
        f"{script}: database directory {elsewhere} cannot be made (Not a directory) (for "
        f"{service}.db); set STACKLING_DATA_DIR to a writable directory "
        f"(or {API[script]}_DB_URL)",
    )


def test_gateway_data_directory_that_cannot_be_written(data_dir: Path) -> None:
    blocker = data_dir / "a-file"
    blocker.write_text("")
    assert_one_line(
        start(
            "stackling-gateway",
            data_dir,
            GATEWAY_CLOUDS_YAML_PATH=str(blocker / "clouds.yaml"),
        ),
        f"stackling-gateway: clouds.yaml directory {blocker} is not a directory; "
        "fix GATEWAY_CLOUDS_YAML_PATH",
    )


@pytest.mark.parametrize("script", [*API, *AGENTS])
def test_bad_setting(script: str, data_dir: Path) -> None:
    assert_one_line(
        start(script, data_dir, STACKLING_EVENT_DELIVERY_LIMIT="often"),
        f"{script}: bad setting STACKLING_EVENT_DELIVERY_LIMIT='often': Input should be a "
        "valid integer, unable to parse string as an integer; fix it in the environment",
    )


@pytest.mark.parametrize("script", ["stackling-gateway", "volume-agent"])
def test_setting_that_is_not_json(script: str, data_dir: Path) -> None:
    prefix = API.get(script) or AGENTS[script]
    assert_one_line(
        start(script, data_dir, **{f"{prefix}_AMQP_TOPIC_URLS": "{volume: x}"}),
        f"{script}: bad setting {prefix}_AMQP_TOPIC_URLS: not valid JSON (Expecting property "
        "name enclosed in double quotes: line 1 column 2 (char 1)); lists and dicts are JSON, "
        """e.g. '["a"]' or '{"k": "v"}'""",
    )
