"""The whole cloud behind a gateway that serves HTTPS: the four services from their console
scripts, the gateway with a certificate of a CA made here by ``deploy/make-tls.py`` (as
``make run TLS=1`` does), and the real ``openstack`` CLI trusting that CA by
``--os-cacert``: ``server list`` and the other services' lists work, and the links the
services build point at the https gateway."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stack import Stack

from common_rpc.chassis.identity import generate_keypair

ROOT = Path(__file__).resolve().parents[2]
OPENSTACK = Path(sys.executable).parent / "openstack"


class TlsStack(Stack):
    """A ``Stack`` whose gateway is reached at https (its other processes as before)."""

    def url(self, name: str) -> str:
        url = super().url(name)
        return url.replace("http://", "https://", 1) if name == "gateway" else url


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    data_dir = tmp_path_factory.mktemp("tls-stack")
    generate_keypair(data_dir / "keys")
    tls = data_dir / "tls"
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "make-tls.py"), str(tls), "127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    stack = TlsStack(data_dir)
    stack.env.update(
        GATEWAY_TLS_CERT_FILE=str(tls / "gateway.crt"),
        GATEWAY_TLS_KEY_FILE=str(tls / "gateway.key"),
        GATEWAY_TLS_CA_FILE=str(tls / "ca.pem"),
    )
    try:
        stack.start()
        trust = ssl.create_default_context(cafile=str(tls / "ca.pem"))
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1, verify=trust) as http:
            waiting = set(stack.ports)
            while waiting:
                for name in sorted(waiting):
                    assert stack.procs[name].poll() is None, f"{name}:\n{stack.log(name)}"
                    try:
                        if http.get(f"{stack.url(name)}/readyz").status_code == 200:
                            waiting.discard(name)
                    except httpx.HTTPError:
                        pass
                assert time.monotonic() < deadline, f"not ready: {sorted(waiting)}"
                time.sleep(0.1)
        yield stack
    finally:
        stack.stop()


def openstack(stack: TlsStack, *args: str, cacert: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "REQUESTS_CA"))}
    auth = [
        "--os-auth-url", f"{stack.url('gateway')}/identity/v3", "--os-identity-api-version", "3",
        "--os-username", "admin", "--os-password", stack.admin_password,
        "--os-project-name", "admin", "--os-user-domain-name", "Default",
        "--os-project-domain-name", "Default", "--os-interface", "public",
    ]  # fmt: skip
    if cacert:
        auth += ["--os-cacert", str(stack.data_dir / "tls" / "ca.pem")]
    return subprocess.run(
        [str(OPENSTACK), *auth, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_openstack_cli_lists_servers_over_https(tls_stack: TlsStack) -> None:
    for command in (["server", "list"], ["network", "list"], ["volume", "list"]):
        done = openstack(tls_stack, *command, "-f", "json")
        assert done.returncode == 0, (command, done.stderr)
        assert isinstance(json.loads(done.stdout), list)
    network = openstack(tls_stack, "network", "create", "tls-net", "-f", "json")
    assert network.returncode == 0, network.stderr
    listed = openstack(tls_stack, "network", "list", "--name", "tls-net", "-f", "json")
    assert [n["Name"] for n in json.loads(listed.stdout)] == ["tls-net"]
    assert openstack(tls_stack, "network", "delete", "tls-net").returncode == 0
    # Without the CA the client refuses the gateway's certificate.
    refused = openstack(tls_stack, "server", "list", cacert=False)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or "SSL" in refused.stderr


def test_links_built_behind_the_gateway_are_https(tls_stack: TlsStack) -> None:
    gw = tls_stack.url("gateway")
    trust = ssl.create_default_context(cafile=str(tls_stack.data_dir / "tls" / "ca.pem"))
    with httpx.Client(base_url=gw, timeout=10, verify=trust) as http:
        compute = http.get("/compute/v2.1")
        assert compute.status_code == 200, compute.text
        assert compute.json()["version"]["links"][0]["href"] == f"{gw}/compute/v2.1/"
        network = http.get("/network/").json()["versions"][0]
        assert network["links"][0]["href"] == f"{gw}/network/v2.0/"
