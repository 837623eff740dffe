"""The policy table: matching, denial by default, role implication, and every service route
against every role through the real proxy and the real services."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gateway_fixtures import FakeTokenValidator, LiveServer, build_gateway, serve

from api_gateway.auth import ROLES, AuthContext, effective_roles
from api_gateway.policy import (
    ADMIN,
    MEMBER,
    POLICY,
    READER,
    authorize,
    find_rule,
    is_public,
    policy_coverage,
    service_of,
)
from api_gateway.settings import GatewaySettings
from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair


def _auth(role: str | None, project_id: str = "p1") -> AuthContext:
    return AuthContext(
        token_id="t",
        user_id="u",
        user_name="u",
        project_id=project_id,
        project_name=project_id,
        roles=effective_roles({role}) if role else frozenset(),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def test_literal_segments_win_over_parameters() -> None:
    detail = find_rule("compute", "GET", "/v2.1/servers/detail")
    one = find_rule("compute", "GET", "/v2.1/servers/9f1c")
    assert detail is not None and detail[0].template == "/v2.1/servers/detail"
    assert one is not None and one[0].template == "/v2.1/servers/{id}"
    assert one[1] == {"id": "9f1c"}


def test_roles_imply_each_other() -> None:
    path = "/v2.0/networks"
    for role, can_read, can_write in (
        (READER, True, False),
        (MEMBER, True, True),
        (ADMIN, True, True),
    ):
        assert authorize("network", "GET", path, _auth(role)).allowed is can_read
        assert authorize("network", "POST", path, _auth(role)).allowed is can_write
    assert not authorize("network", "GET", path, _auth(None)).allowed
    assert authorize("network", "GET", "/v2.0/agents", _auth(ADMIN)).allowed
    assert authorize("network", "GET", "/v2.0/agents", _auth(MEMBER)).status == 403


def test_management_apis_are_admin_only_at_every_depth() -> None:
    for path in ("/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail", "/v2.1/os-services/1"):
        for method in ("GET", "PUT", "DELETE"):
            assert authorize("compute", method, path, _auth(MEMBER)).status == 403
            assert authorize("compute", method, path, _auth(ADMIN)).allowed
    assert authorize("volume", "GET", "/v3/p1/os-services", _auth(MEMBER)).status == 403
    assert authorize("compute", "POST", "/v2.1/flavors", _auth(MEMBER)).status == 403
    assert authorize("compute", "DELETE", "/v2.1/flavors/f1", _auth(ADMIN)).allowed


def test_an_operation_without_a_rule_is_denied_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="api_gateway.policy"):
        decision = authorize("compute", "GET", "/v2.1/os-secret-things", _auth(ADMIN))
    assert (decision.allowed, decision.status, decision.rule) == (False, 403, None)
    assert "no rule" in caplog.text and "os-secret-things" in caplog.text
    assert authorize("network", "PATCH", "/v2.0/networks/n1", _auth(ADMIN)).status == 403
    assert authorize("unknown", "GET", "/v1/x", _auth(ADMIN)).status == 403


def test_head_follows_get_and_version_documents_are_public() -> None:
    assert authorize("image", "HEAD", "/v2/images/i1", _auth(READER)).allowed
    for service, path in (
        ("compute", "/v2.1"),
        ("volume", "/v3/"),
        ("image", ""),
        ("network", "/"),
    ):
        assert is_public(service, "GET", path)
        assert authorize(service, "GET", path, None).allowed
    assert not is_public("compute", "POST", "/v2.1")
    assert authorize("compute", "GET", "/v2.1/servers", None).status == 401


def test_another_projects_path_is_404_except_for_admins() -> None:
    assert authorize("volume", "GET", "/v3/p1/volumes", _auth(READER, "p1")).allowed
    other = authorize("volume", "GET", "/v3/p1/volumes", _auth(MEMBER, "p2"))
    assert (other.allowed, other.status) == (False, 404)
    assert authorize("volume", "GET", "/v3/p1/volumes", _auth(ADMIN, "p2")).allowed


def test_an_empty_id_still_reaches_the_service_for_its_404() -> None:
    # Tempest: GET/PUT/DELETE .../volumes/ with an empty id must be 404, not 403.
    decision = authorize("volume", "DELETE", "/v3/p1/volumes/", _auth(MEMBER))
    assert decision.allowed and decision.rule is not None
    assert decision.rule.template == "/v3/{project_id}/volumes/{id}"


def test_actions_are_decided_by_the_action() -> None:
    path = "/v2.1/servers/s1/action"
    pending = authorize("compute", "POST", path, _auth(MEMBER))
    assert pending.needs_action and not pending.allowed  # fails closed if not asked again
    assert authorize("compute", "POST", path, _auth(MEMBER), action="os-stop").allowed
    reset = authorize("compute", "POST", path, _auth(MEMBER), action="os-resetState")
    assert reset.status == 403
    assert authorize("compute", "POST", path, _auth(ADMIN), action="os-resetState").allowed
    assert authorize("compute", "POST", path, _auth(ADMIN), action="os-fly").status == 403
    volume = "/v3/p1/volumes/v1/action"
    assert authorize("volume", "POST", volume, _auth(MEMBER), action="os-extend").allowed
    assert (
        authorize("volume", "POST", volume, _auth(MEMBER), action="os-reset_status").status == 403
    )


def test_the_table_names_only_known_roles_once_per_operation() -> None:
    seen: set[tuple[str, str, str]] = set()
    for service, entries in POLICY.items():
        for method, template, access in entries:
            roles = [access] if isinstance(access, str) else list(access.values())
            assert set(roles) <= set(ROLES), (service, method, template)
            assert template.startswith("/v"), template
            key = (service, method, template)
            assert key not in seen, f"duplicate rule {key}"
            seen.add(key)


def test_coverage_lists_routes_without_a_rule() -> None:
    openapi = {
        "paths": {
            "/v2.1/servers": {"get": {}, "post": {}, "parameters": []},
            "/v2.1/servers/{server_id}": {"get": {}, "patch": {}},
            "/v2.1/os-hypervisors/{id}/uptime": {"get": {}},
            "/v2.1/os-nothing": {"get": {}},
            "/image/v2/images/{image_id}/file": {"put": {}},
            "/image/v2/secrets": {"get": {}},
            "/healthz": {"get": {}},
            "/": {"get": {}},
        }
    }
    assert policy_coverage("compute", openapi) == [
        ("GET", "/image/v2/secrets"),
        ("GET", "/v2.1/os-nothing"),
        ("PATCH", "/v2.1/servers/{server_id}"),
    ]
    assert service_of("compute", "/image/v2/images") == ("image", "/v2/images")
    assert service_of("network", "/image/v2/images") == ("network", "/image/v2/images")


# --- every route of the real services, through the real proxy, for every role ---------

SERVICES = ("compute", "network", "volume")
PROJECT_A, PROJECT_B = f"pa-{uuid.uuid4().hex[:8]}", f"pb-{uuid.uuid4().hex[:8]}"
_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass
class Stack:
    signer: IdentitySigner
    settings: GatewaySettings
    urls: dict[str, str]


def _service_app(name: str, data_dir: Any) -> Any:
    if name == "compute":
        from compute_svc.app import create_app
        from compute_svc.settings import ComputeSettings as Settings
    elif name == "network":
        from network_svc.app import create_app
        from network_svc.settings import NetworkSettings as Settings
    else:
        from volume_svc.app import create_app
        from volume_svc.settings import VolumeSettings as Settings
    return create_app(Settings(data_dir=data_dir, log_json=False))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for module in ("compute_svc", "network_svc", "volume_svc"):
        pytest.importorskip(module)
    data_dir = tmp_path_factory.mktemp("services")
    private, _public = generate_keypair(data_dir / "keys")
    servers = {name: LiveServer(_service_app(name, data_dir)) for name in SERVICES}
    for server in servers.values():
        server.start()
    urls = {name: server.url for name, server in servers.items()}
    settings = GatewaySettings(
        data_dir=data_dir,
        public_url="http://gateway.test",
        log_json=False,
        compute_urls=[urls["compute"]],
        network_urls=[urls["network"]],
        volume_urls=[urls["volume"]],
    )
    try:
        yield Stack(IdentitySigner.from_file(private), settings, urls)
    finally:
        for server in servers.values():
            server.stop()


def _openapi(stack: Stack, service: str) -> dict[str, Any]:
    admin = RequestContext(project_id=PROJECT_A, roles=frozenset(ROLES))
    reply = httpx.get(
        f"{stack.urls[service]}/openapi.json",
        headers={IDENTITY_HEADER: stack.signer.sign(admin)},
    )
    reply.raise_for_status()
    return reply.json()


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_route_has_a_rule(stack: Stack, service: str) -> None:
    document = _openapi(stack, service)
    assert document["paths"], f"{service} lists no routes"
    assert policy_coverage(service, document) == []


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _operations(stack: Stack) -> Iterator[tuple[str, str, str, str, str | None, str]]:
    """(service, method, template, gateway path, action, least role) for every route."""
    for service in SERVICES:
        for template, item in _openapi(stack, service)["paths"].items():
            filled = _PARAM.sub(
                lambda m: PROJECT_A if m.group(1) == "project_id" else str(uuid.uuid4()),
                template,
            )
            target, rest = service_of(service, filled)
            # compute-svc's /image/... is the gateway's /image/...; the rest gets a prefix.
            path = filled if target != service else f"/{service}{filled}"
            for method in (m.upper() for m in item if m.upper() in METHODS):
                found = find_rule(target, method, rest)
                assert found is not None, (service, method, template)
                access = found[0].access
                actions = [(None, access)] if isinstance(access, str) else list(access.items())
                for action, role in actions:
                    yield service, method, template, path, action, role


async def _status(http: httpx.AsyncClient, method: str, path: str, body: Any, token: str) -> int:
    reply = await http.request(method, path, json=body, headers={"X-Auth-Token": token})
    return reply.status_code


async def test_every_route_for_every_role_through_the_proxy(stack: Stack) -> None:
    validator = FakeTokenValidator()
    tokens = {role: validator.issue(PROJECT_A, role) for role in (ADMIN, MEMBER, READER)}
    outsider = validator.issue(PROJECT_B, MEMBER)
    operations = list(_operations(stack))
    assert operations
    with serve(build_gateway(stack.settings, validator, stack.signer)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for service, method, template, path, action, least in operations:
                body: Any = None
                if method in ("POST", "PUT", "PATCH"):
                    body = {action: None} if action else {}
                where = f"{service} {method} {template} {action or ''}"
                for role, token in tokens.items():
                    status = await _status(http, method, path, body, token)
                    assert status < 500, f"{where} as {role}: {status}"
                    if least in effective_roles({role}):
                        assert status not in (401, 403), f"{where} as {role}: {status}"
                    else:
                        assert status == 403, f"{where} as {role} (needs {least}): {status}"
                if _PARAM.search(template):
                    # A resource path: another project's member must not reach the resource.
                    status = await _status(http, method, path, body, outsider)
                    assert not 200 <= status < 300, f"{where} as another project: {status}"
                    if least in effective_roles({MEMBER}):
                        assert status == 404, f"{where} as another project: {status}"
