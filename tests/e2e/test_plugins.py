"""A package from outside the repository adds an API extension and a driver to volume-svc.

The package (``tests/e2e/plugin_pkg``) is built and installed into a directory of the
test's own, then volume-api and volume-agent run from their console scripts with that
directory on their path. Installed alone it changes nothing; after a settings change
(``VOLUME_EXTENSIONS``, ``VOLUME_DRIVERS``) and a restart, with no code change, the API
serves the extension and the agent exports volumes through the package's target driver.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stack import Stack, broker_vhost

from common_rpc import Broker, MessagingConfig, RequestContext, use_context
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair
from common_rpc.contracts.volume import Connector, VolumeApi
from common_rpc.rpc import RpcClient
from common_rpc.testing import wait_for

PLUGIN_SOURCE = Path(__file__).parent / "plugin_pkg"
INITIATOR = "iqn.2026-12.org.stackling.test:plugin-host"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built and installed, as ``pip install`` would, into a directory."""
    site = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-build")
    source = shutil.copytree(PLUGIN_SOURCE, build / "source")  # the build writes beside it
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--disable-pip-version-check",
            "--target", str(site), str(source),
        ],
        check=True,
        timeout=300,
        cwd=build,
    )  # fmt: skip
    assert list(site.glob("stackling_demo_plugin-*.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def volume_stack(tmp_path: Path, plugin_site: Path) -> Iterator[dict]:
    generate_keypair(tmp_path / "keys")
    host = f"plugin-{uuid.uuid4().hex[:8]}"
    storage = tmp_path / "volumes"
    with broker_vhost(f"plugin-{uuid.uuid4().hex[:8]}") as amqp_url:
        base = {
            "STACKLING_AMQP_URL": amqp_url,
            "STACKLING_HOST": host,
            "PYTHONPATH": str(plugin_site),
            "VOLUME_AGENT_TARGET_HELPER": "fake",  # no kernel object in this test
            "VOLUME_AGENT_STORAGE_DIR": str(storage),
            "VOLUME_AGENT_NAME_PREFIX": host,
        }
        yield {"root": tmp_path, "base": base, "storage": storage}


def start(root: Path, env: dict[str, str]) -> Stack:
    stack = Stack(root, ("volume", "volume-agent"), env=env)
    stack.start()
    stack.wait_ready()
    return stack


async def exercise(stack: Stack, amqp_url: str) -> dict:
    """Call the extension, then make a volume and export it; what each answered."""
    signer = IdentitySigner.from_file(stack.data_dir / "keys" / "identity.key")
    project = f"p-{uuid.uuid4().hex[:8]}"
    ctx = RequestContext(project_id=project, user_id="u1", roles=frozenset({"member"}))
    headers = {IDENTITY_HEADER: signer.sign(ctx)}
    admin = RequestContext(project_id=project, user_id="admin", roles=frozenset({"admin"}))
    seen: dict = {}
    async with httpx.AsyncClient(base_url=stack.url("volume"), headers=headers) as http:

        async def agent_up() -> bool:  # a create sent before the agent listens is lost
            listed = await http.get(
                f"/v3/{project}/os-services", headers={IDENTITY_HEADER: signer.sign(admin)}
            )
            return any(s["state"] == "up" for s in listed.json().get("services", []))

        await wait_for(agent_up, timeout=30, interval=0.2)
        echo = await http.get(f"/v3/{project}/demo-echo")
        seen["echo"] = (echo.status_code, echo.json())
        listed = await http.get("/v3/extensions")
        seen["aliases"] = {e["alias"] for e in listed.json()["extensions"]}
        made = await http.post(f"/v3/{project}/volumes", json={"volume": {"size": 1}})
        assert made.status_code == 202, made.text
        volume_id = made.json()["volume"]["id"]

        async def available() -> bool:
            shown = await http.get(f"/v3/{project}/volumes/{volume_id}")
            return shown.json()["volume"]["status"] == "available"

        await wait_for(available, timeout=30, interval=0.2)
        broker = Broker(MessagingConfig(url=amqp_url), name="plugin-test")
        try:
            volumes = VolumeApi(RpcClient(broker), timeout=30)
            with use_context(ctx):  # Cinder's attach protocol: reserve, then connect
                await volumes.reserve(volume_id)
                info = await volumes.initialize_connection(
                    volume_id, Connector(initiator=INITIATOR, host="plugin-host")
                )
        finally:
            await broker.close()
        seen["iqn"] = info.data.target_iqn
        seen["volume_id"] = volume_id
    return seen


async def test_an_installed_plugin_is_used_after_a_settings_change(volume_stack: dict) -> None:
    root, base, storage = volume_stack["root"], volume_stack["base"], volume_stack["storage"]
    amqp_url = base["STACKLING_AMQP_URL"]
    journal = storage / "demo-target.log"

    stack = start(root, base)  # installed, not chosen: nothing changes
    try:
        before = await exercise(stack, amqp_url)
    finally:
        stack.stop()
    assert before["echo"][0] == 404
    assert "demo-echo" not in before["aliases"]
    assert not before["iqn"].startswith("iqn.2026-12.example.demo")
    assert not journal.exists()

    chosen = base | {
        "VOLUME_EXTENSIONS": json.dumps(["demo-echo"]),
        "VOLUME_DRIVERS": json.dumps({"target": "demo"}),
    }
    stack = start(root, chosen)
    try:
        after = await exercise(stack, amqp_url)
    finally:
        stack.stop()
    assert after["echo"][0] == 200
    assert after["echo"][1]["demo"]["caller_project"] == after["echo"][1]["demo"]["project_id"]
    assert "demo-echo" in after["aliases"]
    assert after["iqn"] == f"iqn.2026-12.example.demo:{after['volume_id']}"
    exported = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {"export": after["volume_id"], "initiator": INITIATOR} in exported
