"""Identity protections: the lockout after failed password attempts (401 until it ends, shown
by user show), password rules, the token lifetime setting, and failed logins counted in
/metrics and logged without the password."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from identity_fixtures import (
    ADMIN_PASSWORD,
    PUBLIC_URL,
    LiveGateway,
    build_app,
    gateway_settings,
    openstack_cli,
    password_auth,
    start_live_gateway,
)
from test_identity_admin import fault, ok

from api_gateway.domain.bootstrap import bootstrap
from api_gateway.settings import GatewaySettings
from common_rpc.chassis.settings import SettingsError
from common_rpc.testing import running_app

V3 = "/identity/v3"
LOCKOUT = {"lockout_failure_attempts": 3, "lockout_duration_s": 3}


@asynccontextmanager
async def gateway_with(
    tmp_path: Path, db_url: str, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The gateway app in-process with changed settings; yields its client and admin headers."""
    settings = gateway_settings(tmp_path, db_url, PUBLIC_URL).model_copy(update=overrides)
    app = build_app(settings)
    async with running_app(app, base_url=PUBLIC_URL) as http:
        await bootstrap(app.state.runtime.sessions, settings)
        reply = await http.post(
            f"{V3}/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD, "admin")
        )
        yield http, {"X-Auth-Token": ok(reply, 201) and reply.headers["X-Subject-Token"]}


async def failed_logins(http: httpx.AsyncClient, reason: str) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(
        rf'^stackling_gateway_failed_logins_total{{reason="{reason}"}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def login_status(http: httpx.AsyncClient, user: str, password: str) -> int:
    reply = await http.post(f"{V3}/auth/tokens", json=password_auth(user, password))
    return reply.status_code


async def test_lockout_refuses_until_it_ends(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway_with(tmp_path, db_url, **LOCKOUT) as (http, admin):
        body = {"user": {"name": "lock-me", "password": "right-pw"}}
        user_id = ok(await http.post(f"{V3}/users", json=body, headers=admin), 201)["user"]["id"]
        bad_before = await failed_logins(http, "bad_credentials")
        locked_before = await failed_logins(http, "locked")
        caplog.set_level(logging.INFO)
        for _ in range(3):
            assert await login_status(http, "lock-me", "wrong-pw-7f3a") == 401
        started = time.monotonic()  # after the last failure: the lockout ends 3 s after it
        assert await failed_logins(http, "bad_credentials") == bad_before + 3
        shown = ok(await http.get(f"{V3}/users/{user_id}", headers=admin))["user"]
        until = datetime.fromisoformat(shown["options"]["locked_until"].replace("Z", "+00:00"))
        assert timedelta(0) < until - datetime.now(until.tzinfo) <= timedelta(seconds=3)
        # The right password is refused while it lasts, and the refusals are not counted
        # toward it (the end stays where it was announced).
        while time.monotonic() - started < 1.5:
            assert await login_status(http, "lock-me", "right-pw") == 401
            await asyncio.sleep(0.2)
        assert await failed_logins(http, "locked") > locked_before
        await asyncio.sleep(max(0.0, 3.2 - (time.monotonic() - started)))
        assert await login_status(http, "lock-me", "right-pw") == 201
        shown = ok(await http.get(f"{V3}/users/{user_id}", headers=admin))["user"]
        assert shown["options"] == {}
        # Logged with the name, never the password.
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert "lock-me" in logged and "bad_credentials" in logged
        assert "wrong-pw-7f3a" not in logged and "right-pw" not in logged

        # A success resets the count: two failures then one more do not lock.
        for _ in range(2):
            assert await login_status(http, "lock-me", "nope") == 401
        assert await login_status(http, "lock-me", "right-pw") == 201
        assert await login_status(http, "lock-me", "nope") == 401
        assert await login_status(http, "lock-me", "right-pw") == 201

        # An admin ends a lockout by enabling the user (Keystone's way).
        for _ in range(3):
            assert await login_status(http, "lock-me", "nope") == 401
        assert await login_status(http, "lock-me", "right-pw") == 401
        enable = {"user": {"enabled": True}}
        ok(await http.patch(f"{V3}/users/{user_id}", json=enable, headers=admin))
        assert await login_status(http, "lock-me", "right-pw") == 201

        # Keystone's option exempts a user; a password change counts like a login.
        exempt = {"user": {"options": {"ignore_lockout_failure_attempts": True}}}
        shown = ok(await http.patch(f"{V3}/users/{user_id}", json=exempt, headers=admin))["user"]
        assert shown["options"] == {"ignore_lockout_failure_attempts": True}
        for _ in range(4):
            assert await login_status(http, "lock-me", "nope") == 401
        assert await login_status(http, "lock-me", "right-pw") == 201
        exempt["user"]["options"]["ignore_lockout_failure_attempts"] = False
        ok(await http.patch(f"{V3}/users/{user_id}", json=exempt, headers=admin))
        change = {"user": {"original_password": "nope", "password": "new-pw"}}
        for _ in range(3):
            fault(await http.post(f"{V3}/users/{user_id}/password", json=change), 401)
        assert await login_status(http, "lock-me", "right-pw") == 401


async def test_password_rules(tmp_path: Path, db_url: str) -> None:
    rules = {
        "password_regex": r"^(?=.*\d).{8,}$",
        "password_regex_description": "at least 8 characters, one of them a digit",
    }
    async with gateway_with(tmp_path, db_url, **rules) as (http, admin):
        weak = {"user": {"name": "ruled", "password": "short"}}
        message = fault(await http.post(f"{V3}/users", json=weak, headers=admin), 400)
        assert message == (
            "Password validation error: The password does not meet the requirements: "
            "at least 8 characters, one of them a digit."
        )
        body = {"user": {"name": "ruled", "password": "long-enough-1"}}
        user_id = ok(await http.post(f"{V3}/users", json=body, headers=admin), 201)["user"]["id"]
        patch = {"user": {"password": "no-digits-here"}}
        fault(await http.patch(f"{V3}/users/{user_id}", json=patch, headers=admin), 400)
        path = f"{V3}/users/{user_id}/password"
        change = {"user": {"original_password": "long-enough-1", "password": "nodigit!"}}
        fault(await http.post(path, json=change), 400)
        assert await login_status(http, "ruled", "long-enough-1") == 201  # unchanged
        change["user"]["password"] = "better-pw-2"
        ok(await http.post(path, json=change), 204)
        assert await login_status(http, "ruled", "better-pw-2") == 201


async def test_token_lifetime_setting(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_TOKEN_TTL_S", "120")
    assert GatewaySettings().token_ttl_s == 120
    monkeypatch.setenv("GATEWAY_TOKEN_TTL_S", "0")
    with pytest.raises(SettingsError):
        GatewaySettings()
    monkeypatch.delenv("GATEWAY_TOKEN_TTL_S")
    async with gateway_with(tmp_path, db_url, token_ttl_s=120) as (http, _admin):
        reply = await http.post(f"{V3}/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD))
        token = ok(reply, 201)["token"]
        issued, expires = (
            datetime.fromisoformat(token[key].replace("Z", "+00:00"))
            for key in ("issued_at", "expires_at")
        )
        assert expires - issued == timedelta(seconds=120)


@pytest.fixture(scope="module")
def locking_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with start_live_gateway(
        tmp_path_factory.mktemp("locking"), lockout_failure_attempts=2, lockout_duration_s=600
    ) as gateway:
        yield gateway


def test_user_show_and_set_lockout_with_the_cli(locking_gateway: LiveGateway) -> None:
    def cli(*args: str) -> Any:
        return openstack_cli(locking_gateway, *args)

    cli("user", "create", "--password", "cli-right", "cli-locked")
    shown = cli("user", "show", "cli-locked", "-f", "json")
    assert shown["options"] == {}
    for _ in range(2):
        refused = openstack_cli(
            locking_gateway, "--os-username", "cli-locked", "--os-password", "wrong",
            "token", "issue", cloud="stackling-demo", check=False,
        )  # fmt: skip
        assert refused.returncode != 0
    shown = cli("user", "show", "cli-locked", "-f", "json")
    assert shown["options"]["locked_until"].endswith("Z")
    cli("user", "set", "--ignore-lockout-failure-attempts", "cli-locked")
    shown = cli("user", "show", "cli-locked", "-f", "json")
    # Exempt: no lockout holds it.
    assert shown["options"] == {"ignore_lockout_failure_attempts": True}
