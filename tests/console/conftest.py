"""Fixtures of the console's browser tests: a real stack and headless Chromium.

``light_stack``: the gateway and the three APIs (no agents) from their console scripts, on
a RabbitMQ virtual host of their own; enough for every page but a server that boots.
``users``: a member and a reader of a fresh project, a member of another one, the admin.
``browser``: one Chromium for the module; ``console(...)`` opens a fresh window (its own
cookies), closed and checked (no dialog, script error or CSP violation) after the test,
with a screenshot of how it ended in the test's output directory.

The e2e helpers (``stack``, ``cloud``) are shared with tests/e2e.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from browser import Console, chromium, need_chromium
from stack import Caller, IdentityAdmin, Stack, broker_vhost, running_stack

from common_rpc.chassis.identity import generate_keypair


@pytest.fixture(scope="module")
def light_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_chromium()
    data_dir = tmp_path_factory.mktemp("stack")
    generate_keypair(data_dir / "keys")
    with broker_vhost(f"stk-console-{uuid.uuid4().hex[:8]}") as amqp_url:
        with running_stack(data_dir, env={"STACKLING_AMQP_URL": amqp_url}) as stack:
            yield stack


class Users:
    """Users of the light stack, made through the identity API."""

    def __init__(self, identity: IdentityAdmin, suffix: str) -> None:
        self.identity = identity
        self.suffix = suffix
        self.project_a = identity.create_project(f"console-a-{suffix}")
        self.project_b = identity.create_project(f"console-b-{suffix}")
        self.member = identity.add_user(f"alice-{suffix}", self.project_a, "member")
        self.reader = identity.add_user(f"rita-{suffix}", self.project_a, "reader")
        self.other = identity.add_user(f"bob-{suffix}", self.project_b, "member")
        self.admin = identity.admin

    def project_name(self, caller: Caller) -> str:
        return (
            f"console-a-{self.suffix}"
            if caller.project_id == self.project_a
            else (f"console-b-{self.suffix}")
        )


@pytest.fixture(scope="module")
def users(light_stack: Stack) -> Iterator[Users]:
    identity = IdentityAdmin(light_stack.url("gateway"), light_stack.admin_password)
    try:
        yield Users(identity, uuid.uuid4().hex[:6])
    finally:
        identity.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def console(browser: Any, tmp_path: Path) -> Iterator[Callable[[str], Console]]:
    """``console(gateway_url)``: a fresh browser window; checked and closed after the test."""
    opened: list[Console] = []

    def open_(gateway: str) -> Console:
        window = Console(browser, gateway, tmp_path / "screenshots")
        opened.append(window)
        return window

    yield open_
    failures = []
    for i, window in enumerate(opened):
        try:
            window.shot(f"end-{i}")
        except Exception:  # a closed page has nothing to show
            pass
        try:
            window.close()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, failures
