"""openstacksdk, a real client, against the gateway on a real port: discovery, tokens,
catalog, the admin API as admin, and 403 for a member."""

from __future__ import annotations

import openstack
import openstack.connection
import pytest
from identity_fixtures import ADMIN_PASSWORD, DEMO_PASSWORD, LiveGateway
from openstack import exceptions


def connect(
    gateway: LiveGateway, username: str, password: str, project: str
) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=gateway.url + "/identity/v3",
        username=username,
        password=password,
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
        # Only what is given here: no clouds.yaml or OS_* variables of the machine.
        load_yaml_config=False,
        load_envvars=False,
    )


def test_admin_token_and_catalog(live_gateway: LiveGateway) -> None:
    conn = connect(live_gateway, "admin", ADMIN_PASSWORD, "admin")
    assert conn.authorize()
    access = conn.session.auth.get_access(conn.session)
    project_id = live_gateway.accounts["admin"]["project_id"]
    assert access.project_id == project_id
    assert set(access.role_names) == {"admin", "member", "reader"}
    catalog = access.service_catalog
    base = live_gateway.url
    expected = {
        "identity": f"{base}/identity",
        "compute": f"{base}/compute/v2.1",
        "image": f"{base}/image",
        "network": f"{base}/network",
        "block-storage": f"{base}/volume/v3/{project_id}",
        "volumev3": f"{base}/volume/v3/{project_id}",
    }
    for service_type, url in expected.items():
        for interface in ("public", "internal", "admin"):
            found = catalog.url_for(
                service_type=service_type, interface=interface, region_name="RegionOne"
            )
            assert found == url, (service_type, interface)


def test_admin_manages_projects_users_and_grants(live_gateway: LiveGateway) -> None:
    conn = connect(live_gateway, "admin", ADMIN_PASSWORD, "admin")
    identity = conn.identity
    assert {"admin", "demo"} <= {p.name for p in identity.projects()}
    project = identity.create_project(name="sdk-project", description="made by the SDK")
    assert project.id and project.domain_id == "default" and project.is_enabled
    user = identity.create_user(
        name="sdk-user", password="sdk-pw", default_project_id=project.id, email="s@example.org"
    )
    assert user.id and user.default_project_id == project.id
    # find_* resolve names: GET by name (404), then a list with ?name=.
    assert identity.find_project("sdk-project").id == project.id
    assert identity.find_user("sdk-user").id == user.id
    role = identity.find_role("member")
    assert role is not None
    assert not identity.validate_user_has_project_role(project, user, role)
    identity.assign_project_role_to_user(project, user, role)
    assert identity.validate_user_has_project_role(project, user, role)
    assigned = list(identity.role_assignments(scope_project_id=project.id, user_id=user.id))
    assert [a.role["id"] for a in assigned] == [role.id]
    granted = list(identity.role_assignments_filter(project=project, user=user))
    assert [r.name for r in granted] == ["member"]

    newcomer = connect(live_gateway, "sdk-user", "sdk-pw", "sdk-project")
    access = newcomer.session.auth.get_access(newcomer.session)
    assert access.project_id == project.id
    assert set(access.role_names) == {"member", "reader"}
    assert [p.name for p in newcomer.identity.user_projects(user.id)] == ["sdk-project"]

    identity.unassign_project_role_from_user(project, user, role)
    assert not identity.validate_user_has_project_role(project, user, role)
    identity.update_user(user, enabled=False)
    assert not identity.get_user(user.id).is_enabled
    identity.delete_user(user, ignore_missing=False)
    identity.delete_project(project, ignore_missing=False)
    assert identity.find_project("sdk-project") is None


def test_member_is_refused_admin_calls(live_gateway: LiveGateway) -> None:
    conn = connect(live_gateway, "demo", DEMO_PASSWORD, "demo")
    assert conn.authorize()
    with pytest.raises(exceptions.ForbiddenException):
        list(conn.identity.projects())
    with pytest.raises(exceptions.ForbiddenException):
        conn.identity.create_project(name="not-allowed")
    with pytest.raises(exceptions.ForbiddenException):
        conn.identity.create_user(name="not-allowed", password="pw")
    with pytest.raises(exceptions.ForbiddenException):
        list(conn.identity.users())
    # What concerns the member itself stays readable.
    demo_user = live_gateway.accounts["demo"]["user_id"]
    assert [p.name for p in conn.identity.user_projects(demo_user)] == ["demo"]


def test_bad_password_is_refused(live_gateway: LiveGateway) -> None:
    conn = connect(live_gateway, "demo", "not-the-password", "demo")
    with pytest.raises(exceptions.SDKException, match="401"):
        conn.authorize()


def test_bootstrap_clouds_yaml_works(
    live_gateway: LiveGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(live_gateway.settings.clouds_yaml_file))
    for cloud, roles in (("stackling-admin", {"admin"}), ("stackling-demo", {"member"})):
        conn = openstack.connect(cloud=cloud)
        access = conn.session.auth.get_access(conn.session)
        assert roles <= set(access.role_names), cloud
