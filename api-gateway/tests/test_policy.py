"""The policy table: matching, denial by default, role implication, actions and coverage.

Every route of the running services for every role, through the real gateway with real
tokens, is walked in tests/e2e/test_policy_matrix.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from api_gateway.domain.auth import ROLES, AuthContext, effective_roles
from api_gateway.domain.policy import (
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
    # Neutron lists agents to anyone (a member gets an empty list from the service) ...
    assert authorize("network", "GET", "/v2.0/agents", _auth(MEMBER)).allowed
    # ... but an agent's own routes stay the admin's.
    assert authorize("network", "GET", "/v2.0/agents/a1", _auth(MEMBER)).status == 403


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
    with caplog.at_level(logging.WARNING, logger="api_gateway.domain.policy"):
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
