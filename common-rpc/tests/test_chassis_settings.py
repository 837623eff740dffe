"""ServiceSettings: service prefix, shared STACKLING_ defaults, derived paths, messaging."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from chassis_fixtures import WidgetSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("STACKLING_", "WIDGETS_")):
            monkeypatch.delenv(name)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = WidgetSettings()
    assert s.host == socket.gethostname()
    assert (s.bind_host, s.port) == ("127.0.0.1", 18777)
    assert s.data_dir == Path("data")
    assert s.db_url is None
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/widgets.db"
    assert s.identity_public_key_path == Path("data/keys/identity.pub")
    assert s.log_json is True and s.log_level == "INFO"
    assert s.extensions == [] and s.drivers == {}


def test_service_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WIDGETS_PORT", "9999")
    monkeypatch.setenv("WIDGETS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WIDGETS_DB_URL", "postgresql+asyncpg://postgres@db/widgets")
    monkeypatch.setenv("WIDGETS_AMQP_TOPIC_URLS", '{"volume": "amqp://v/"}')
    monkeypatch.setenv("WIDGETS_AMQP_EVENTS_URL", "amqp://events/")
    monkeypatch.setenv("WIDGETS_RPC_QUEUE_TYPE", "quorum")
    monkeypatch.setenv("WIDGETS_EVENT_DELIVERY_LIMIT", "9")
    monkeypatch.setenv("WIDGETS_LOG_JSON", "false")
    monkeypatch.setenv("WIDGETS_EXTENSIONS", '["quotas", "tags"]')
    monkeypatch.setenv("WIDGETS_DRIVERS", '{"l2": "linux"}')
    s = WidgetSettings()
    assert s.port == 9999
    assert s.database_url == "postgresql+asyncpg://postgres@db/widgets"
    assert s.identity_key_file == tmp_path / "keys" / "identity.pub"
    assert s.log_json is False
    assert s.extensions == ["quotas", "tags"] and s.drivers == {"l2": "linux"}
    m = s.messaging()
    assert m.url_for_topic("volume.host1") == "amqp://v/"
    assert m.url_for_events() == "amqp://events/"
    assert (m.rpc_queue_type, m.event_delivery_limit) == ("quorum", 9)


def test_shared_env_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STACKLING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STACKLING_AMQP_URL", "amqp://shared/")
    monkeypatch.setenv("STACKLING_LOG_LEVEL", "DEBUG")
    # Per-service settings are never shared: one DB URL for every service would be a bug.
    monkeypatch.setenv("STACKLING_DB_URL", "postgresql+asyncpg://postgres@db/shared")
    monkeypatch.setenv("STACKLING_PORT", "1")
    s = WidgetSettings()
    assert s.data_dir == tmp_path
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/widgets.db"
    assert s.messaging().url == "amqp://shared/"
    assert s.log_level == "DEBUG"
    assert s.port == 18777

    monkeypatch.setenv("WIDGETS_AMQP_URL", "amqp://own/")
    assert WidgetSettings().amqp_url == "amqp://own/"
    assert WidgetSettings(amqp_url="amqp://arg/").amqp_url == "amqp://arg/"


def test_explicit_identity_key_path(tmp_path: Path) -> None:
    s = WidgetSettings(data_dir=tmp_path, identity_public_key_path=tmp_path / "gw.pub")
    assert s.identity_key_file == tmp_path / "gw.pub"
