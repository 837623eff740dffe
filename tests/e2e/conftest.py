"""Fixtures of the end-to-end tests: the real processes, and real users with real tokens.

    def test_x(live_stack: Stack, callers: Callers) -> None:
        httpx.get(f"{live_stack.url('gateway')}/network/v2.0/extensions",
                  headers=callers.reader_a.headers)

``live_stack`` is started once per test module (gateway, compute, network and volume
from their console scripts, on a temporary data directory with its own identity keys)
and stopped after it, also when a test failed. ``callers`` are users the gateway's
identity API created, with tokens it issued: its admin, a member and a reader of
project A and a member of project B.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from stack import Callers, IdentityAdmin, Stack, running_stack

from common_rpc.chassis.identity import IdentitySigner, generate_keypair


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("stack")
    generate_keypair(data_dir / "keys")
    with running_stack(data_dir) as stack:
        yield stack


@pytest.fixture(scope="module")
def signer(live_stack: Stack) -> IdentitySigner:
    """Signs identities as the stack's gateway does (its private key)."""
    return IdentitySigner.from_file(live_stack.data_dir / "keys" / "identity.key")


@pytest.fixture(scope="module")
def identity(live_stack: Stack) -> Iterator[IdentityAdmin]:
    admin = IdentityAdmin(live_stack.url("gateway"), live_stack.admin_password)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(scope="module")
def callers(identity: IdentityAdmin) -> Callers:
    suffix = uuid.uuid4().hex[:8]
    project_a = identity.create_project(f"project-a-{suffix}")
    project_b = identity.create_project(f"project-b-{suffix}")
    return Callers(
        admin=identity.admin,
        member_a=identity.add_user(f"member-a-{suffix}", project_a, "member"),
        reader_a=identity.add_user(f"reader-a-{suffix}", project_a, "reader"),
        member_b=identity.add_user(f"member-b-{suffix}", project_b, "member"),
    )
