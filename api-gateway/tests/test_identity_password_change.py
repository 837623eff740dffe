"""``POST /v3/users/{id}/password``: a user's own change, proven by the old password."""

from __future__ import annotations

from identity_fixtures import Gateway, LiveGateway, openstack_cli, password_auth
from test_identity_admin import admin_headers, fault, ok

V3 = "/identity/v3"


async def test_change_needs_the_old_password_and_ends_old_tokens(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    user = {"user": {"name": "pw-user", "password": "old-pw"}}
    user_id = ok(await http.post(f"{V3}/users", json=user, headers=admin), 201)["user"]["id"]
    token = await gateway.login("pw-user", "old-pw")
    path = f"{V3}/users/{user_id}/password"
    wrong = {"user": {"original_password": "guess", "password": "new-pw"}}
    assert "Error when changing user password" in fault(await http.post(path, json=wrong), 401)
    assert await gateway.tokens.validate(token) is not None  # nothing changed
    fault(await http.post(path, json={"user": {"password": "new-pw"}}), 400)
    unknown = f"{V3}/users/nobody/password"
    fault(await http.post(unknown, json={"user": {"original_password": "x", "password": "y"}}), 401)

    change = {"user": {"original_password": "old-pw", "password": "new-pw"}}
    # No token needed: the old password is the proof, as in Keystone.
    ok(await http.post(path, json=change), 204)
    assert await gateway.tokens.validate(token) is None
    fault(await http.post(f"{V3}/auth/tokens", json=password_auth("pw-user", "old-pw")), 401)
    await gateway.login("pw-user", "new-pw")


def test_user_password_set_command(live_gateway: LiveGateway) -> None:
    openstack_cli(live_gateway, "user", "create", "--password", "cli-old", "cli-pw-user")
    openstack_cli(
        live_gateway, "role", "add", "--user", "cli-pw-user", "--project", "demo", "member"
    )
    # The demo cloud of clouds.yaml with this user's name and password instead.
    as_user = ("--os-username", "cli-pw-user")
    openstack_cli(
        live_gateway,
        *as_user,
        "--os-password", "cli-old",
        "user", "password", "set", "--original-password", "cli-old", "--password", "cli-new",
        cloud="stackling-demo",
    )  # fmt: skip
    issued = openstack_cli(
        live_gateway, *as_user, "--os-password", "cli-new", "token", "issue", "-f", "json",
        cloud="stackling-demo",
    )  # fmt: skip
    assert issued["project_id"] == live_gateway.accounts["demo"]["project_id"]
    refused = openstack_cli(
        live_gateway, *as_user, "--os-password", "cli-old", "token", "issue",
        cloud="stackling-demo", check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "401" in refused.stderr
    openstack_cli(live_gateway, "user", "delete", "cli-pw-user")
