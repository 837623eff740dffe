"""TLS at the door: ``stackling-gateway`` itself, started from its console script with a
certificate of a CA made in the test's directory (by ``deploy/make-tls.py``, as ``make run
TLS=1`` makes one), and the real ``openstack`` CLI over HTTPS.

The CLI trusts the CA through the ``cacert`` the bootstrap wrote into clouds.yaml, or
``--os-cacert``; without it the client refuses the certificate, and plain HTTP to the TLS
port gets no HTTP answer. A certificate the process cannot load stops it with one line.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from identity_fixtures import OPENSTACK

from api_gateway.server import server_options
from api_gateway.settings import GatewaySettings
from common_rpc.chassis.identity import generate_keypair
from common_rpc.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "tls-admin-secret"
_OWN = ("STACKLING_", "GATEWAY_", "OS_", "REQUESTS_CA_BUNDLE", "SSL_CERT_", "CURL_CA_BUNDLE")


def make_tls(directory: Path, *hosts: str) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "make-tls.py"), str(directory), *hosts],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    if "STACKLING_AMQP_URL" in os.environ:  # the broker the suite runs with, if not the default
        env["STACKLING_AMQP_URL"] = os.environ["STACKLING_AMQP_URL"]
    env.update(
        STACKLING_DATA_DIR=str(data_dir),
        STACKLING_HOST=f"tls-{secrets.token_hex(4)}",
        STACKLING_LOG_JSON="true",
        **settings,
    )
    return env


@dataclass
class TlsGateway:
    url: str
    port: int
    tls: Path
    clouds_yaml: Path

    @property
    def ca(self) -> Path:
        return self.tls / "ca.pem"


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsGateway]:
    data_dir = tmp_path_factory.mktemp("tls-gateway")
    generate_keypair(data_dir / "keys")
    tls = make_tls(data_dir / "tls", "127.0.0.1", "localhost")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = _env(
        data_dir,
        GATEWAY_PORT=str(port),
        GATEWAY_PUBLIC_URL=url,
        GATEWAY_TLS_CERT_FILE=str(tls / "gateway.crt"),
        GATEWAY_TLS_KEY_FILE=str(tls / "gateway.key"),
        GATEWAY_TLS_CA_FILE=str(tls / "ca.pem"),
        GATEWAY_ADMIN_PASSWORD=ADMIN_PASSWORD,
        GATEWAY_DEMO_PASSWORD="tls-demo-secret",
        GATEWAY_COMPUTE_URLS='["http://127.0.0.1:9"]',
    )
    log_path = data_dir / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "stackling-gateway")], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(verify=trusting(tls / "ca.pem"), timeout=2) as http:
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    if http.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.1)
        yield TlsGateway(url, port, tls, data_dir / "clouds.yaml")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def openstack(gateway: TlsGateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    env["OS_CLIENT_CONFIG_FILE"] = str(gateway.clouds_yaml)
    return subprocess.run(
        [str(OPENSTACK), *args], env=env, capture_output=True, text=True, timeout=120
    )


def _password_args(gateway: TlsGateway) -> list[str]:
    return [
        "--os-auth-url", f"{gateway.url}/identity/v3", "--os-identity-api-version", "3",
        "--os-username", "admin", "--os-password", ADMIN_PASSWORD,
        "--os-project-name", "admin", "--os-user-domain-name", "Default",
        "--os-project-domain-name", "Default",
    ]  # fmt: skip


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, (done.args, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_clouds_yaml_names_the_https_url_and_the_ca(tls_gateway: TlsGateway) -> None:
    clouds = yaml.safe_load(tls_gateway.clouds_yaml.read_text())["clouds"]
    for name in ("stackling-admin", "stackling-demo"):
        assert clouds[name]["auth"]["auth_url"] == f"{tls_gateway.url}/identity/v3"
        assert clouds[name]["cacert"] == str(tls_gateway.ca)


def test_the_openstack_cli_works_over_https(tls_gateway: TlsGateway) -> None:
    # Through clouds.yaml's cacert.
    token = _json(
        openstack(tls_gateway, "--os-cloud", "stackling-admin", "token", "issue", "-f", "json")
    )
    assert token["id"] and token["project_id"]
    catalog = _json(
        openstack(tls_gateway, "--os-cloud", "stackling-admin", "catalog", "list", "-f", "json")
    )
    compute = next(entry for entry in catalog if entry["Type"] == "compute")
    assert f"{tls_gateway.url}/compute" in json.dumps(compute["Endpoints"])  # the catalog is https
    # And with --os-cacert, no clouds.yaml at all.
    args = [*_password_args(tls_gateway), "--os-cacert", str(tls_gateway.ca)]
    projects = _json(openstack(tls_gateway, *args, "project", "list", "-f", "json"))
    assert "admin" in [p["Name"] for p in projects]


def test_a_client_without_the_ca_refuses_the_certificate(tls_gateway: TlsGateway) -> None:
    done = openstack(tls_gateway, *_password_args(tls_gateway), "project", "list", "-f", "json")
    assert done.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr or "SSL" in done.stderr, done.stderr
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_gateway.url}/healthz", verify=True)


def test_plain_http_to_the_tls_port_gets_no_http_answer(tls_gateway: TlsGateway) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_gateway.port}/healthz", timeout=5)
    # And over TLS the same request is answered.
    assert (
        httpx.get(f"{tls_gateway.url}/healthz", verify=trusting(tls_gateway.ca)).status_code == 200
    )


def _start(data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = _env(
        data_dir,
        STACKLING_AMQP_URL="amqp://guest:guest@127.0.0.1:1/",  # it must not get that far
        GATEWAY_PORT=str(free_port()),
        **settings,
    )
    return subprocess.run(
        [str(BIN / "stackling-gateway")], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_certificate_it_cannot_load_stops_the_start_with_one_line(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "keys")
    tls = make_tls(tmp_path / "tls")
    fix = "fix GATEWAY_TLS_CERT_FILE / GATEWAY_TLS_KEY_FILE"
    missing = tmp_path / "missing.crt"
    cert, key, ca_key = str(tls / "gateway.crt"), str(tls / "gateway.key"), str(tls / "ca.key")
    cases = {
        "missing": (
            {"GATEWAY_TLS_CERT_FILE": str(missing), "GATEWAY_TLS_KEY_FILE": key},
            f"stackling-gateway: TLS file {missing} not found; {fix}",
        ),
        "not its key": (
            {"GATEWAY_TLS_CERT_FILE": cert, "GATEWAY_TLS_KEY_FILE": ca_key},
            f"stackling-gateway: TLS certificate {tls / 'gateway.crt'} with key {tls / 'ca.key'} "
            f"not a usable PEM certificate and key (KEY_VALUES_MISMATCH); {fix}",
        ),
        "no key": (
            {"GATEWAY_TLS_CERT_FILE": cert},
            "stackling-gateway: bad setting GATEWAY_TLS_KEY_FILE=None: GATEWAY_TLS_CERT_FILE and "
            "GATEWAY_TLS_KEY_FILE go together; fix it in the environment",
        ),
        "http public url": (
            {
                "GATEWAY_TLS_CERT_FILE": cert,
                "GATEWAY_TLS_KEY_FILE": key,
                "GATEWAY_PUBLIC_URL": "http://gateway.test:8443",
            },
            "stackling-gateway: bad setting GATEWAY_PUBLIC_URL: must be https:// when "
            "GATEWAY_TLS_CERT_FILE is set; fix it in the environment",
        ),
    }  # fmt: skip
    for case, (settings, line) in cases.items():
        done = _start(tmp_path, **settings)
        assert (done.returncode, done.stderr.strip()) == (1, line), (case, done.stderr)


def test_make_run_tls_makes_the_ca_and_points_the_gateway_at_it(tmp_path: Path) -> None:
    def recipe(*args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("STACKLING_DATA_DIR", "TLS")}
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", "run", f"DATA_DIR={tmp_path}", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.replace("\\\n", " ")

    tls = tmp_path / "tls"
    on = recipe("TLS=1")
    assert f'deploy/make-tls.py "{tls}" 127.0.0.1 localhost' in on
    honcho = next(line for line in on.splitlines() if "honcho start" in line)
    for setting in (
        f'GATEWAY_TLS_CERT_FILE="{tls}/gateway.crt"',
        f'GATEWAY_TLS_KEY_FILE="{tls}/gateway.key"',
        f'GATEWAY_TLS_CA_FILE="{tls}/ca.pem"',
        'GATEWAY_PUBLIC_URL="https://127.0.0.1:8080"',
    ):
        assert setting in honcho, setting
    off = recipe()
    assert "make-tls" not in off and "GATEWAY_TLS" not in off
    assert 'GATEWAY_PUBLIC_URL="http://127.0.0.1:8080"' in off


def test_empty_tls_settings_are_plain_http_and_tls_makes_the_default_url_https(
    tmp_path: Path,
) -> None:
    # docker-compose passes its unset ${STACKLING_TLS_*:-} as empty strings.
    plain = GatewaySettings(data_dir=tmp_path, tls_cert_file="", tls_key_file="", tls_ca_file="")
    assert (plain.tls_enabled, plain.tls_cert_file, plain.public_url) == (
        False, None, "http://127.0.0.1:8080",
    )  # fmt: skip
    tls = GatewaySettings(data_dir=tmp_path, tls_cert_file="/c.pem", tls_key_file="/k.pem")
    assert (tls.tls_enabled, tls.public_url) == (True, "https://127.0.0.1:8080")
    assert server_options(tls)["ssl_certfile"] == "/c.pem"
    assert "ssl_certfile" not in server_options(plain)
