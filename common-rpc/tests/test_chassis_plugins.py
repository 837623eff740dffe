"""Extensions and drivers by entry points: a real package installed mid-test adds an API."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict

from common_rpc.chassis import plugins
from common_rpc.chassis.app import install_fault_handlers
from common_rpc.chassis.faults import nova_fault
from common_rpc.chassis.plugins import (
    Extension,
    PluginError,
    extensions_document,
    load_driver,
    load_extensions,
    mount_extensions,
)
from common_rpc.chassis.settings import ServiceSettings

EXT_HELLO = Path(__file__).parent / "fixtures" / "ext_hello"
EXT_HELLO_DIST = "stackling-ext-hello"


class TestsvcSettings(ServiceSettings):
    __test__ = False
    service_name: ClassVar[str] = "testsvc"
    model_config = SettingsConfigDict(env_prefix="TESTSVC_")


def build_app(settings: ServiceSettings) -> FastAPI:
    """What a service's create_app does with its settings; no service code knows the plugin."""
    app = FastAPI()
    install_fault_handlers(app, nova_fault)
    mount_extensions(app, load_extensions(settings.service_name, settings.extensions))
    return app


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=120,
    )


def forget_ext_hello() -> None:
    # The same process must see the package come and go: drop cached finders and the module.
    importlib.invalidate_caches()
    sys.modules.pop("ext_hello", None)


@pytest.fixture
def install_ext_hello(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Installs the ext_hello package when called; always uninstalls it afterwards."""
    source = tmp_path / "ext_hello"
    # Built from a copy: the build leaves build/ and egg-info behind in its source.
    shutil.copytree(EXT_HELLO, source)
    pip("uninstall", "-y", EXT_HELLO_DIST, check=False)  # a leftover of an interrupted run
    forget_ext_hello()

    def install() -> None:
        pip("install", "--no-deps", "--no-build-isolation", str(source))
        forget_ext_hello()

    try:
        yield install
    finally:
        pip("uninstall", "-y", EXT_HELLO_DIST, check=False)
        forget_ext_hello()


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.get(path)


async def test_installing_a_package_adds_its_extension(install_ext_hello, monkeypatch):
    monkeypatch.setenv("TESTSVC_EXTENSIONS", '["hello"]')

    with pytest.raises(PluginError) as missing:
        build_app(TestsvcSettings())
    assert "'hello'" in str(missing.value)
    assert "stackling.testsvc.extensions" in str(missing.value)
    assert "installed: none" in str(missing.value)
    bare = build_app(TestsvcSettings(extensions=[]))
    assert (await get(bare, "/hello")).status_code == 404
    assert (await get(bare, "/extensions")).json() == {"extensions": []}

    install_ext_hello()

    app = build_app(TestsvcSettings())
    hello = await get(app, "/hello")
    assert hello.status_code == 200
    assert hello.json() == {"hello": "world"}
    listing = (await get(app, "/extensions")).json()
    assert listing == {
        "extensions": [
            {
                "alias": "hello",
                "name": "Hello",
                "description": "Answers GET /hello.",
                "updated": "2025-01-01T00:00:00Z",
                "links": [],
            }
        ]
    }
    assert (await get(app, "/extensions/hello")).json()["extension"]["alias"] == "hello"

    with pytest.raises(PluginError, match=r"'goodbye' is not installed.*installed: hello"):
        load_extensions("testsvc", ["hello", "goodbye"])


async def test_installing_a_package_adds_its_driver(install_ext_hello):
    with pytest.raises(PluginError, match="greeter driver 'plain' is not installed"):
        load_driver("testsvc", "greeter", "plain")

    install_ext_hello()

    greeter = load_driver("testsvc", "greeter", "plain")
    assert greeter().greet("stackling") == "hello, stackling"
    with pytest.raises(PluginError, match=r"'fancy' is not installed.*installed: plain"):
        load_driver("testsvc", "greeter", "fancy")


# In-process entry points for the error cases: no install needed.
ping_router = APIRouter()


@ping_router.get("/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}


PING = Extension("ping", "Ping", "Answers GET /ping.", "2024-06-01T00:00:00+00:00", ping_router)


class PingAgain:
    """Not an Extension instance: any object with the attributes will do."""

    alias = "ping"
    name = "Ping again"
    description = "Clashes with ping."
    updated = "2024-06-01T00:00:00Z"
    router = None


class BadDate:
    alias = "bad-date"
    name = "Bad date"
    description = "Its updated is not a date."
    updated = "last tuesday"


class NoAlias:
    name = "No alias"


@pytest.fixture
def fake_entry_points(monkeypatch) -> None:
    group = "stackling.fakesvc.extensions"
    eps = [
        EntryPoint(name, f"{__name__}:{target}", group)
        for name, target in [
            ("ping", "PING"),
            ("ping-again", "PingAgain"),
            ("bad-date", "BadDate"),
            ("no-alias", "NoAlias"),
            ("broken", "DoesNotExist"),
        ]
    ]
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [ep for ep in eps if ep.group == group]
    )


@pytest.mark.usefixtures("fake_entry_points")
@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["ping", "ping-again"], "more than one extension has the alias"),
        (["bad-date"], "not an ISO 8601 date"),
        (["no-alias"], "lacks alias, description, updated"),
        (["broken"], "failed to load"),
    ],
)
def test_unusable_extensions_stop_the_start(names, message):
    with pytest.raises(PluginError, match=message):
        load_extensions("fakesvc", names)


@pytest.mark.usefixtures("fake_entry_points")
async def test_mounted_under_a_prefix_with_builtin_aliases():
    exts = load_extensions("fakesvc", ["ping", "ping"])  # named twice, loaded once
    builtin = Extension("security-group", "Security groups", "Built in.", "2012-10-05T10:00:00Z")
    app = FastAPI()
    install_fault_handlers(app, nova_fault)
    mount_extensions(app, exts, prefix="/v2.0", builtin=[builtin])

    assert (await get(app, "/v2.0/ping")).json() == {"ping": "pong"}
    listing = (await get(app, "/v2.0/extensions")).json()
    assert [e["alias"] for e in listing["extensions"]] == ["security-group", "ping"]
    missing = await get(app, "/v2.0/extensions/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "itemNotFound": {"code": 404, "message": "Extension nope could not be found."}
    }
    assert app.state.extensions == exts


def test_extensions_document_has_the_openstack_shape():
    assert extensions_document([PING]) == {
        "extensions": [
            {
                "alias": "ping",
                "name": "Ping",
                "description": "Answers GET /ping.",
                "updated": "2024-06-01T00:00:00+00:00",
                "links": [],
            }
        ]
    }
