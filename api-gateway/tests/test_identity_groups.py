"""Groups, their members and grants (a member holds the group's roles), and roles admins
create and delete; over HTTP, then with the openstack CLI."""

from __future__ import annotations

from identity_fixtures import PUBLIC_URL, Gateway, LiveGateway, openstack_cli, password_auth
from test_identity_admin import admin_headers, fault, ok

V3 = "/identity/v3"


async def make_user(gateway: Gateway, admin: dict[str, str], name: str) -> str:
    body = {"user": {"name": name, "password": f"{name}-pw"}}
    return str(
        ok(await gateway.http.post(f"{V3}/users", json=body, headers=admin), 201)["user"]["id"]
    )


async def test_roles_created_changed_deleted(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    body = {"role": {"name": "auditor", "description": "reads logs"}}
    role = ok(await http.post(f"{V3}/roles", json=body, headers=admin), 201)["role"]
    assert role == {
        "id": role["id"],
        "name": "auditor",
        "domain_id": None,
        "description": "reads logs",
        "options": {},
        "links": {"self": f"{PUBLIC_URL}/identity/v3/roles/{role['id']}"},
    }
    assert "Duplicate entry" in fault(await http.post(f"{V3}/roles", json=body, headers=admin), 409)
    domain_role = {"role": {"name": "x", "domain_id": "default"}}
    fault(await http.post(f"{V3}/roles", json=domain_role, headers=admin), 400)
    renamed = {"role": {"name": "auditors"}}
    patched = ok(await http.patch(f"{V3}/roles/{role['id']}", json=renamed, headers=admin))
    assert patched["role"]["name"] == "auditors"
    # The seeded roles are immutable: neither changed nor deleted.
    member_role = ok(await http.get(f"{V3}/roles", params={"name": "member"}, headers=admin))
    member_id = member_role["roles"][0]["id"]
    assert member_role["roles"][0]["options"] == {"immutable": True}
    fault(await http.delete(f"{V3}/roles/{member_id}", headers=admin), 403)
    fault(await http.patch(f"{V3}/roles/{member_id}", json=renamed, headers=admin), 403)
    # A role granted and then deleted is gone from the user's token at once.
    user_id = await make_user(gateway, admin, "aud")
    demo_project = gateway.accounts["demo"]["project_id"]
    for rid in (role["id"], member_id):
        ok(
            await http.put(
                f"{V3}/projects/{demo_project}/users/{user_id}/roles/{rid}", headers=admin
            ),
            204,
        )
    token = await gateway.login("aud", "aud-pw", "demo")
    auth = await gateway.tokens.validate(token)
    assert auth is not None and auth.roles == {"auditors", "member", "reader"}
    ok(await http.delete(f"{V3}/roles/{role['id']}", headers=admin), 204)
    auth = await gateway.tokens.validate(token)
    assert auth is not None and auth.roles == {"member", "reader"}
    fault(await http.get(f"{V3}/roles/{role['id']}", headers=admin), 404)
    member = {"X-Auth-Token": await gateway.demo_token()}
    fault(await http.post(f"{V3}/roles", json={"role": {"name": "z"}}, headers=member), 403)


async def test_group_roles_reach_members_tokens(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    body = {"group": {"name": "ops", "description": "operators"}}
    group = ok(await http.post(f"{V3}/groups", json=body, headers=admin), 201)["group"]
    assert group == {
        "id": group["id"],
        "name": "ops",
        "domain_id": "default",
        "description": "operators",
        "links": {"self": f"{PUBLIC_URL}/identity/v3/groups/{group['id']}"},
    }
    fault(await http.post(f"{V3}/groups", json=body, headers=admin), 409)
    listed = ok(await http.get(f"{V3}/groups", params={"name": "ops"}, headers=admin))
    assert [g["id"] for g in listed["groups"]] == [group["id"]]
    user_id = await make_user(gateway, admin, "op1")
    gpath = f"{V3}/groups/{group['id']}"
    assert (await http.head(f"{gpath}/users/{user_id}", headers=admin)).status_code == 404
    ok(await http.put(f"{gpath}/users/{user_id}", headers=admin), 204)
    ok(await http.put(f"{gpath}/users/{user_id}", headers=admin), 204)  # twice is fine
    ok(await http.head(f"{gpath}/users/{user_id}", headers=admin), 204)
    users = ok(await http.get(f"{gpath}/users", headers=admin))["users"]
    assert [u["name"] for u in users] == ["op1"]
    # Not a member of anything with a role yet: no token for the project.
    demo_project = gateway.accounts["demo"]["project_id"]
    reply = await http.post(f"{V3}/auth/tokens", json=password_auth("op1", "op1-pw", "demo"))
    fault(reply, 401)
    roles = ok(await http.get(f"{V3}/roles", params={"name": "member"}, headers=admin))["roles"]
    grant = f"{V3}/projects/{demo_project}/groups/{group['id']}/roles/{roles[0]['id']}"
    ok(await http.put(grant, headers=admin), 204)
    ok(await http.head(grant, headers=admin), 204)
    granted = ok(await http.get(grant.rsplit("/", 1)[0], headers=admin))["roles"]
    assert [r["name"] for r in granted] == ["member"]
    token = await gateway.login("op1", "op1-pw", "demo")
    reply = await http.get(
        f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
    )
    assert {r["name"] for r in ok(reply)["token"]["roles"]} == {"member", "reader"}
    mine = ok(await http.get(f"{V3}/users/{user_id}/groups", headers={"X-Auth-Token": token}))
    assert [g["name"] for g in mine["groups"]] == ["ops"]
    projects = ok(await http.get(f"{V3}/auth/projects", headers={"X-Auth-Token": token}))
    assert [p["name"] for p in projects["projects"]] == ["demo"]

    # role_assignments: the group's grant, and what the user holds through it.
    params = {"group.id": group["id"]}
    listed = ok(await http.get(f"{V3}/role_assignments", params=params, headers=admin))
    assert [(a["group"]["id"], a["role"]["id"]) for a in listed["role_assignments"]] == [
        (group["id"], roles[0]["id"])
    ]
    params = {"user.id": user_id, "effective": "", "include_names": ""}
    listed = ok(await http.get(f"{V3}/role_assignments", params=params, headers=admin))
    held = {a["role"]["name"]: a for a in listed["role_assignments"]}
    assert set(held) == {"member", "reader"}
    assert held["member"]["user"]["name"] == "op1"
    assert held["member"]["links"] == {
        "assignment": f"{PUBLIC_URL}{grant}",
        "membership": f"{PUBLIC_URL}{gpath}/users/{user_id}",
    }
    assert held["reader"]["links"]["prior_role"].endswith(f"/roles/{roles[0]['id']}")
    bad = {"group.id": group["id"], "effective": ""}
    fault(await http.get(f"{V3}/role_assignments", params=bad, headers=admin), 400)

    # Leaving the group ends the token's access to the project at once.
    ok(await http.delete(f"{gpath}/users/{user_id}", headers=admin), 204)
    assert await gateway.tokens.validate(token) is None
    fault(await http.delete(f"{gpath}/users/{user_id}", headers=admin), 404)
    ok(await http.put(f"{gpath}/users/{user_id}", headers=admin), 204)
    token = await gateway.login("op1", "op1-pw", "demo")
    # So does deleting the group's grant, and deleting the group.
    ok(await http.delete(grant, headers=admin), 204)
    assert await gateway.tokens.validate(token) is None
    fault(await http.delete(grant, headers=admin), 404)
    ok(await http.patch(gpath, json={"group": {"name": "ops2"}}, headers=admin))
    ok(await http.delete(gpath, headers=admin), 204)
    fault(await http.get(gpath, headers=admin), 404)
    member = {"X-Auth-Token": await gateway.demo_token()}
    fault(await http.get(f"{V3}/groups", headers=member), 403)
    fault(await http.get(f"{V3}/users/{user_id}/groups", headers=member), 403)


def test_group_and_role_commands(live_gateway: LiveGateway) -> None:
    def cli(*args: str) -> object:
        return openstack_cli(live_gateway, *args)

    cli("user", "create", "--password", "cli-pw", "cli-user")
    group = cli("group", "create", "--description", "team", "cli-team", "-f", "json")
    assert (group["name"], group["description"]) == ("cli-team", "team")
    cli("group", "add", "user", "cli-team", "cli-user")
    contains = cli("group", "contains", "user", "cli-team", "cli-user")
    assert contains == "cli-user in group cli-team\n"
    role = cli("role", "create", "--description", "cli role", "cli-role", "-f", "json")
    assert role["name"] == "cli-role"
    cli("role", "add", "--group", "cli-team", "--project", "demo", "cli-role")
    listed = cli(
        "role", "assignment", "list", "--user", "cli-user", "--effective", "--names", "-f", "json"
    )
    assert [(a["Role"], a["User"], a["Project"]) for a in listed] == [
        ("cli-role", "cli-user@Default", "demo@Default")
    ]
    grants = cli("role", "assignment", "list", "--group", "cli-team", "--names", "-f", "json")
    assert [(a["Role"], a["Group"]) for a in grants] == [("cli-role", "cli-team@Default")]
    cli("role", "remove", "--group", "cli-team", "--project", "demo", "cli-role")
    cli("group", "remove", "user", "cli-team", "cli-user")
    cli("role", "delete", "cli-role")
    cli("group", "delete", "cli-team")
    cli("user", "delete", "cli-user")
    assert "cli-role" not in [r["Name"] for r in cli("role", "list", "-f", "json")]
    assert cli("group", "list", "-f", "json") == []
