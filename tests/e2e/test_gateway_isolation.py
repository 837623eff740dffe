"""The gateway is the only door, and it keeps tenants apart: shown on the running stack.

- A token that is forged, revoked, expired, or belongs to a disabled or deleted user is
  401 at the gateway, before any service is asked.
- A request straight to a service needs the identity the gateway signs: none, or one
  signed with another key, or an expired one, is 401.
- Project B's member cannot read project A in the identity API (403, Keystone's rule:
  admin or the token's own project) nor reach any path of project A (404, and the
  request never gets to the service).
- The catalog lists only the services the gateway is configured with, and the prefix of
  one that is not configured is 404 there.
- A configured service that is down is a quick 503, not a hang (last in this module:
  it kills the stack's network-api).

A second gateway (its own database, in front of the stack's volume-api only, issuing
2-second tokens) shows the catalog and the expiry.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from stack import Callers, IdentityAdmin, Stack, running_stack

from api_gateway.domain.auth import ROLES
from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair

NETWORK_PATH = "/network/v2.0/extensions"
# Each service's route that answers 200 today, as the service itself serves it.
DIRECT_PATHS = {
    "compute": "/v2.1/extensions",
    "network": "/v2.0/extensions",
    "volume": "/v3/extensions",
}
TOKEN_TTL_S = 2


def get(
    gateway: Stack, path: str, token: str | None = None, rid: str | None = None
) -> httpx.Response:
    headers: dict[str, str] = {}
    if token is not None:
        headers["X-Auth-Token"] = token
    if rid is not None:
        headers["X-Request-Id"] = rid
    return httpx.get(gateway.url("gateway") + path, headers=headers, timeout=10)


def assert_refused_by_gateway(gateway: Stack, reply: httpx.Response) -> None:
    """A 401 of the gateway itself: it carries the challenge pointing at its identity API."""
    assert reply.status_code == 401, reply.text
    challenge = f'Keystone uri="{gateway.url("gateway")}/identity"'
    assert reply.headers.get("www-authenticate") == challenge, reply.headers


def reached(stack: Stack, service: str, rid: str) -> bool:
    """Did ``service`` log a request with this request id (its access log carries it)?"""
    return rid in stack.log_file(service).read_text(errors="replace")


@pytest.fixture(scope="module")
def volume_gateway(live_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second gateway: its own database, only the stack's volume-api, 2-second tokens."""
    key = live_stack.data_dir / "keys" / "identity.key"
    with running_stack(
        tmp_path_factory.mktemp("volume-gateway"),
        ("gateway",),
        backends={"volume": live_stack.url("volume")},
        env={
            "GATEWAY_IDENTITY_PRIVATE_KEY_PATH": str(key),
            "GATEWAY_TOKEN_TTL_S": str(TOKEN_TTL_S),
        },
    ) as gateway:
        yield gateway


def test_forged_tokens_are_refused(live_stack: Stack, callers: Callers) -> None:
    assert get(live_stack, NETWORK_PATH, callers.member_a.token).status_code == 200
    tampered = callers.member_a.token[:-1] + ("A" if callers.member_a.token[-1] != "A" else "B")
    for token in (secrets.token_urlsafe(32), tampered, "x" * 10_000):
        assert_refused_by_gateway(live_stack, get(live_stack, NETWORK_PATH, token))
    assert_refused_by_gateway(live_stack, get(live_stack, NETWORK_PATH))


def test_tokens_of_disabled_and_deleted_users_are_refused(
    live_stack: Stack, identity: IdentityAdmin, callers: Callers
) -> None:
    suffix = uuid.uuid4().hex[:8]
    disabled = identity.add_user(f"disabled-{suffix}", callers.project_a, "member")
    deleted = identity.add_user(f"deleted-{suffix}", callers.project_a, "member")
    for caller in (disabled, deleted):
        assert get(live_stack, NETWORK_PATH, caller.token).status_code == 200
    identity.call(
        "PATCH", f"/users/{disabled.user_id}", json={"user": {"enabled": False}}, expect=200
    )
    identity.call("DELETE", f"/users/{deleted.user_id}", expect=204)
    for caller in (disabled, deleted):
        assert_refused_by_gateway(live_stack, get(live_stack, NETWORK_PATH, caller.token))
        relogin = identity.issue(caller.name, caller.password, project_id=callers.project_a)
        assert relogin.status_code == 401, relogin.text


def test_a_revoked_token_is_refused(
    live_stack: Stack, identity: IdentityAdmin, callers: Callers
) -> None:
    member = callers.member_a
    caller = identity.login(member.name, member.password, project_id=member.project_id)
    assert get(live_stack, NETWORK_PATH, caller.token).status_code == 200
    revoke = httpx.delete(
        live_stack.url("gateway") + "/identity/v3/auth/tokens",
        headers={"X-Auth-Token": caller.token, "X-Subject-Token": caller.token},
    )
    assert revoke.status_code == 204, revoke.text
    assert_refused_by_gateway(live_stack, get(live_stack, NETWORK_PATH, caller.token))
    check = httpx.get(
        live_stack.url("gateway") + "/identity/v3/auth/tokens",
        headers={**identity.admin.headers, "X-Subject-Token": caller.token},
    )
    assert check.status_code == 404, check.text
    # Only that token: the member's other one still works.
    assert get(live_stack, NETWORK_PATH, member.token).status_code == 200


def test_an_expired_token_is_refused(volume_gateway: Stack) -> None:
    identity = IdentityAdmin(volume_gateway.url("gateway"), volume_gateway.admin_password)
    try:
        reply = identity.issue("admin", volume_gateway.admin_password, project_name="admin")
    finally:
        identity.close()
    assert reply.status_code == 201, reply.text
    token = reply.headers["X-Subject-Token"]
    expires_at = datetime.fromisoformat(reply.json()["token"]["expires_at"].replace("Z", "+00:00"))
    assert get(volume_gateway, "/volume/v3/extensions", token).status_code == 200
    time.sleep(max((expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    assert_refused_by_gateway(volume_gateway, get(volume_gateway, "/volume/v3/extensions", token))


def test_services_accept_only_the_identity_the_gateway_signs(
    live_stack: Stack, signer: IdentitySigner, callers: Callers, tmp_path: Path
) -> None:
    other_key, _ = generate_keypair(tmp_path / "other-keys")
    impostor = IdentitySigner.from_file(other_key)
    admin = RequestContext(project_id=callers.project_a, roles=frozenset(ROLES))
    refused = {
        "no identity": {},
        "a gateway token instead": {"X-Auth-Token": callers.admin.token},
        "signed with another key": {IDENTITY_HEADER: impostor.sign(admin)},
        "expired": {IDENTITY_HEADER: signer.sign(admin, ttl_s=-60)},
        "not a signature": {IDENTITY_HEADER: "e30.e30.e30"},
    }
    for service, path in DIRECT_PATHS.items():
        url = live_stack.url(service) + path
        for what, headers in refused.items():
            reply = httpx.get(url, headers=headers)
            assert reply.status_code == 401, f"{service}, {what}: {reply.status_code}"
        reply = httpx.get(url, headers={IDENTITY_HEADER: signer.sign(admin)})
        assert reply.status_code == 200, f"{service}, signed by the gateway's key: {reply.text}"


def test_another_projects_member_cannot_read_its_identity(
    live_stack: Stack, callers: Callers
) -> None:
    a, b = callers.project_a, callers.project_b
    outsider = callers.member_b.headers
    base = live_stack.url("gateway") + "/identity/v3"
    with httpx.Client(base_url=base, headers=outsider, timeout=10) as http:
        assert http.get(f"/projects/{b}").status_code == 200  # its own project
        assert http.get(f"/users/{callers.member_b.user_id}").status_code == 200  # itself
        for path in (
            f"/projects/{a}",
            "/projects",
            f"/users/{callers.member_a.user_id}",
            f"/users/{callers.member_a.user_id}/projects",
            f"/role_assignments?scope.project.id={a}",
            f"/projects/{a}/users/{callers.member_a.user_id}/roles",
        ):
            reply = http.get(path)
            assert reply.status_code == 403, f"GET {path}: {reply.status_code} {reply.text}"
            assert callers.member_a.name not in reply.text
        projects = http.get("/auth/projects").json()["projects"]
        assert [p["id"] for p in projects] == [b]


def test_another_projects_paths_are_404_and_never_reach_the_service(
    live_stack: Stack, callers: Callers
) -> None:
    a = callers.project_a
    for path in (f"/volume/v3/{a}/extensions", f"/volume/v3/{a}/volumes"):
        inside, outside = f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"
        own = get(live_stack, path, callers.member_a.token, rid=inside)
        assert own.status_code not in (401, 403), own.text
        assert reached(live_stack, "volume", inside)
        reply = get(live_stack, path, callers.member_b.token, rid=outside)
        assert reply.status_code == 404, reply.text
        assert a not in reply.text
        assert not reached(live_stack, "volume", outside)


def test_the_catalog_lists_only_configured_services(
    live_stack: Stack, volume_gateway: Stack, callers: Callers
) -> None:
    full = httpx.get(
        live_stack.url("gateway") + "/identity/v3/auth/catalog", headers=callers.member_a.headers
    )
    assert {entry["type"] for entry in full.json()["catalog"]} == {
        "identity",
        "compute",
        "image",
        "network",
        "block-storage",
        "volumev3",
    }
    identity = IdentityAdmin(volume_gateway.url("gateway"), volume_gateway.admin_password)
    try:
        reply = identity.issue("admin", volume_gateway.admin_password, project_name="admin")
    finally:
        identity.close()
    assert reply.status_code == 201, reply.text
    catalog = reply.json()["token"]["catalog"]
    assert {entry["type"] for entry in catalog} == {"identity", "block-storage", "volumev3"}
    urls = [endpoint["url"] for entry in catalog for endpoint in entry["endpoints"]]
    assert all(url.startswith(volume_gateway.url("gateway") + "/") for url in urls), urls
    token = reply.headers["X-Subject-Token"]
    for path in ("/compute/v2.1/extensions", "/compute", NETWORK_PATH, "/image/v2/images"):
        missing = get(volume_gateway, path, token)
        assert missing.status_code == 404, f"{path}: {missing.status_code} {missing.text}"
    # The configured one is served, signed with the key the volume-api trusts.
    assert get(volume_gateway, "/volume/v3/extensions", token).status_code == 200


def test_a_service_that_is_down_is_a_quick_503(live_stack: Stack, callers: Callers) -> None:
    """Kills the stack's network-api: keep this test last in the module."""
    token = callers.member_a.token
    assert get(live_stack, NETWORK_PATH, token).status_code == 200
    live_stack.kill("network")
    for _ in range(2):  # refused at connect, then skipped as marked down
        started = time.monotonic()
        reply = get(live_stack, NETWORK_PATH, token)
        assert reply.status_code == 503, reply.text
        assert time.monotonic() - started < 5
        assert "NeutronError" in reply.json()
    write = httpx.post(
        live_stack.url("gateway") + "/network/v2.0/networks",
        json={"network": {"name": "n1"}},
        headers=callers.member_a.headers,
        timeout=10,
    )
    assert write.status_code == 503, write.text
    # The others are not affected.
    assert get(live_stack, "/volume/v3/extensions", token).status_code == 200
