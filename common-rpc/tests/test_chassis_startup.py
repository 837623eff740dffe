"""What stops a process before it serves, as one line: settings that do not parse, identity
keys that are missing or broken, databases that are not URLs, do not answer or cannot be
written; and a process (a script named like a console script) that prints only that line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from chassis_fixtures import *  # noqa: F403
from chassis_fixtures import WidgetSettings

from common_rpc.chassis.identity import IdentitySigner, IdentityVerifier, generate_keypair
from common_rpc.chassis.settings import SettingsError
from common_rpc.chassis.startup import (
    StartupError,
    check_database,
    check_writable_dir,
    load_identity_key,
)
from common_rpc.testing import free_port

SETUP_HINT = (
    "run `make setup DATA_DIR={d}` or set STACKLING_DATA_DIR to the data directory set-up wrote"
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("STACKLING_", "WIDGETS_")):
            monkeypatch.delenv(name)


# --- settings ---------------------------------------------------------------------------------


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIDGETS_PORT", "eighty")
    monkeypatch.setenv("STACKLING_LOG_JSON", "maybe")
    with pytest.raises(SettingsError) as caught:
        WidgetSettings()
    assert str(caught.value) == (
        "bad setting WIDGETS_PORT='eighty': Input should be a valid integer, unable to parse "
        "string as an integer; STACKLING_LOG_JSON='maybe': Input should be a valid boolean, "
        "unable to interpret input; fix it in the environment"
    )
    assert isinstance(caught.value, StartupError) and isinstance(caught.value, ValueError)


def test_the_service_variable_is_named_when_both_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKLING_LOG_JSON", "yes")
    monkeypatch.setenv("WIDGETS_LOG_JSON", "maybe")
    with pytest.raises(SettingsError, match=r"^bad setting WIDGETS_LOG_JSON='maybe': "):
        WidgetSettings()


def test_a_bad_argument_is_named_as_given() -> None:
    with pytest.raises(SettingsError, match=r"^bad setting port='x': Input should be"):
        WidgetSettings(port="x")


def test_json_that_does_not_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKLING_AMQP_TOPIC_URLS", "{volume: amqp://v/}")
    with pytest.raises(SettingsError) as caught:
        WidgetSettings()
    assert str(caught.value).startswith(
        "bad setting STACKLING_AMQP_TOPIC_URLS: not valid JSON (Expecting property name"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://root:secret@db/x", "driver 'mysql' is not supported"),
        ("postgresql://root:secret@db/x", "driver 'postgresql' is not supported"),
        ("sqlite:////tmp/x.db", "driver 'sqlite' is not supported"),
        ("secret", "not a database URL"),
    ],
)
def test_database_urls_the_chassis_cannot_use(url: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        WidgetSettings(db_url=url)
    assert str(caught.value) == (
        f"bad setting db_url: {problem}; use sqlite+aiosqlite:////path/to/file.db or "
        "postgresql+asyncpg://user:password@host/dbname; fix it in the environment"
    )
    assert "secret" not in str(caught.value)


def test_database_urls_the_chassis_uses(tmp_path: Path) -> None:
    for url in (
        f"sqlite+aiosqlite:///{tmp_path}/w.db",
        "sqlite+aiosqlite://",
        "postgresql+asyncpg://u:p@db:5432/w",
    ):
        assert WidgetSettings(db_url=url).database_url == url
    assert WidgetSettings(db_url="").database_url.startswith("sqlite+aiosqlite:///")


# --- identity keys ----------------------------------------------------------------------------


def test_missing_key_in_the_data_dir_says_make_setup(tmp_path: Path) -> None:
    settings = WidgetSettings(data_dir=tmp_path / "d")
    with pytest.raises(StartupError) as caught:
        load_identity_key(
            IdentityVerifier, settings.identity_key_file, settings, "identity_public_key_path"
        )
    data = tmp_path / "d"
    assert str(caught.value) == (
        f"identity key {data}/keys/identity.pub not found; {SETUP_HINT.format(d=data)}"
    )


def test_relative_data_dir_is_shown_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = WidgetSettings()
    with pytest.raises(StartupError, match=f"DATA_DIR={tmp_path}/data`"):
        load_identity_key(
            IdentityVerifier, settings.identity_key_file, settings, "identity_public_key_path"
        )


def test_broken_and_misplaced_keys(tmp_path: Path) -> None:
    priv, _pub = generate_keypair(tmp_path / "keys")
    settings = WidgetSettings(data_dir=tmp_path)
    assert isinstance(
        load_identity_key(IdentitySigner, priv, settings, "identity_public_key_path"),
        IdentitySigner,
    )
    # a private key where the public one belongs: not the key the verifier needs
    with pytest.raises(StartupError) as caught:
        load_identity_key(IdentityVerifier, priv, settings, "identity_public_key_path")
    assert str(caught.value) == (
        f"identity key {priv} is not an Ed25519 key in PEM form; "
        f"move it away and {SETUP_HINT.format(d=tmp_path)}"
    )
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    with pytest.raises(StartupError) as caught:
        load_identity_key(IdentityVerifier, elsewhere, settings, "identity_public_key_path")
    assert str(caught.value) == (
        f"identity key {elsewhere} is a directory, not a key file; "
        "fix WIDGETS_IDENTITY_PUBLIC_KEY_PATH or STACKLING_IDENTITY_PUBLIC_KEY_PATH"
    )


# --- databases and directories ------------------------------------------------------------------


async def test_sqlite_file_is_made_and_written(tmp_path: Path) -> None:
    settings = WidgetSettings(data_dir=tmp_path / "new" / "dir")
    await check_database(settings)
    assert (tmp_path / "new" / "dir" / "widgets.db").exists()


async def test_sqlite_directory_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    settings = WidgetSettings(data_dir=tmp_path / "file" / "data")
    with pytest.raises(StartupError) as caught:
        await check_database(settings)
    assert str(caught.value) == (
        f"database directory {tmp_path}/file/data cannot be made (Not a directory) (for "
        "widgets.db); set STACKLING_DATA_DIR to a writable directory (or WIDGETS_DB_URL)"
    )


async def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "w.db").mkdir()  # a directory where the file should be
    settings = WidgetSettings(db_url=f"sqlite+aiosqlite:///{tmp_path}/w.db")
    with pytest.raises(StartupError) as caught:
        await check_database(settings)
    assert str(caught.value) == (
        f"database file {tmp_path}/w.db unusable: unable to open database file; fix WIDGETS_DB_URL"
    )


async def test_postgresql_reachable(pg_db_url: str) -> None:
    await check_database(WidgetSettings(db_url=pg_db_url))


async def test_postgresql_unreachable_or_refusing() -> None:
    port = free_port()
    settings = WidgetSettings(db_url=f"postgresql+asyncpg://u:secret@127.0.0.1:{port}/w")
    with pytest.raises(StartupError) as caught:
        await check_database(settings)
    assert str(caught.value) == (
        f"database postgresql+asyncpg://u:***@127.0.0.1:{port}/w unreachable: Connect call "
        f"failed ('127.0.0.1', {port}); start PostgreSQL (`make setup` starts a local one) "
        "or fix WIDGETS_DB_URL"
    )
    settings = WidgetSettings(db_url="postgresql+asyncpg://postgres@127.0.0.1/no_such_db_x")
    with pytest.raises(StartupError) as caught:
        await check_database(settings)
    assert str(caught.value) == (
        "database postgresql+asyncpg://postgres@127.0.0.1/no_such_db_x refused the "
        'connection: database "no_such_db_x" does not exist; fix WIDGETS_DB_URL '
        "(`make setup` creates the stackling_<service> roles and databases)"
    )


def test_writable_dir(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "a" / "b", "data directory", "fix X")
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("")
    with pytest.raises(StartupError) as caught:
        check_writable_dir(tmp_path / "f", "data directory", "fix X")
    assert str(caught.value) == f"data directory {tmp_path}/f is not a directory; fix X"


# --- a process ----------------------------------------------------------------------------------

PROGRAM = textwrap.dedent(
    """
    import sys
    from typing import ClassVar
    from pydantic_settings import SettingsConfigDict
    from common_rpc.chassis.app import make_app, run_app
    from common_rpc.chassis.runtime import ServiceRuntime
    from common_rpc.chassis.settings import ServiceSettings

    class Settings(ServiceSettings):
        service_name: ClassVar[str] = "widgets"
        model_config = SettingsConfigDict(env_prefix="WIDGETS_")

    if sys.argv[1:] == ["crash"]:
        raise RuntimeError("a bug keeps its traceback")
    settings = Settings()
    run_app(make_app(settings, ServiceRuntime(settings), title="w", version="1"), settings)
    """
)


def run_program(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "widget-api"  # argv[0], as a console script's
    script.write_text(PROGRAM)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STACKLING_", "WIDGETS_"))}
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=clean | {"STACKLING_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_process_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing_key = run_program(tmp_path, STACKLING_DATA_DIR=str(data), WIDGETS_PORT=str(free_port()))
    assert missing_key.stderr.splitlines() == [
        f"widget-api: identity key {data}/keys/identity.pub not found; " + SETUP_HINT.format(d=data)
    ], missing_key.stderr
    assert missing_key.returncode == 1 and missing_key.stdout == ""

    bad_setting = run_program(tmp_path, WIDGETS_PORT="eighty")
    assert bad_setting.stderr.splitlines() == [
        "widget-api: bad setting WIDGETS_PORT='eighty': Input should be a valid integer, "
        "unable to parse string as an integer; fix it in the environment"
    ], bad_setting.stderr
    assert bad_setting.returncode == 1

    generate_keypair(data / "keys")
    (tmp_path / "blocker").write_text("")
    bad_db = run_program(
        tmp_path,
        STACKLING_DATA_DIR=str(data),
        WIDGETS_PORT=str(free_port()),
        WIDGETS_DB_URL=f"sqlite+aiosqlite:///{tmp_path}/blocker/w.db",
    )
    assert bad_db.stderr.splitlines() == [
        f"widget-api: database directory {tmp_path}/blocker is not a directory (for w.db); "
        "fix WIDGETS_DB_URL"
    ], bad_db.stderr
    assert bad_db.returncode == 1


def test_other_errors_keep_their_traceback(tmp_path: Path) -> None:
    crash = run_program(tmp_path, "crash")
    assert crash.returncode == 1
    assert "Traceback" in crash.stderr and "RuntimeError: a bug keeps" in crash.stderr
