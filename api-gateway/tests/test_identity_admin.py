"""The identity admin API over HTTP: projects, users, roles, domains, grants, policy."""

from __future__ import annotations

from typing import Any

import httpx
from identity_fixtures import ADMIN_PASSWORD, PUBLIC_URL, Gateway

V3 = "/identity/v3"


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json() if reply.content else None


def fault(reply: httpx.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == status
    return str(error["message"])


async def admin_headers(gateway: Gateway) -> dict[str, str]:
    return {"X-Auth-Token": await gateway.admin_token()}


async def test_project_lifecycle(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    created = ok(
        await http.post(f"{V3}/projects", json={"project": {"name": "p2"}}, headers=admin), 201
    )["project"]
    assert len(created["id"]) == 32
    assert created == {
        "id": created["id"],
        "name": "p2",
        "domain_id": "default",
        "description": "",
        "enabled": True,
        "is_domain": False,
        "parent_id": "default",
        "tags": [],
        "options": {},
        "links": {"self": f"{PUBLIC_URL}/identity/v3/projects/{created['id']}"},
    }
    duplicate = await http.post(f"{V3}/projects", json={"project": {"name": "p2"}}, headers=admin)
    assert "Duplicate entry" in fault(duplicate, 409)
    # Clients find by name: GET by name is a 404, then a list with ?name=.
    fault(await http.get(f"{V3}/projects/p2", headers=admin), 404)
    listed = ok(await http.get(f"{V3}/projects", params={"name": "p2"}, headers=admin))
    assert [p["id"] for p in listed["projects"]] == [created["id"]]
    assert listed["links"] == {
        "self": f"{PUBLIC_URL}/identity/v3/projects?name=p2",
        "next": None,
        "previous": None,
    }
    all_names = [p["name"] for p in ok(await http.get(f"{V3}/projects", headers=admin))["projects"]]
    assert all_names == ["admin", "demo", "p2"]
    patched = ok(
        await http.patch(
            f"{V3}/projects/{created['id']}",
            json={"project": {"description": "second", "enabled": False}},
            headers=admin,
        )
    )["project"]
    assert (patched["description"], patched["enabled"]) == ("second", False)
    disabled = await http.get(f"{V3}/projects", params={"enabled": "false"}, headers=admin)
    assert [p["name"] for p in ok(disabled)["projects"]] == ["p2"]
    rename = await http.patch(
        f"{V3}/projects/{created['id']}", json={"project": {"name": "demo"}}, headers=admin
    )
    fault(rename, 409)
    assert ok(await http.delete(f"{V3}/projects/{created['id']}", headers=admin), 204) is None
    fault(await http.get(f"{V3}/projects/{created['id']}", headers=admin), 404)
    fault(await http.delete(f"{V3}/projects/{created['id']}", headers=admin), 404)


async def test_invalid_bodies_are_400(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    bad = [
        ("/projects", {"project": {}}),
        ("/projects", {"project": {"name": ""}}),
        ("/projects", {"project": {"name": "x" * 65}}),
        ("/projects", {"project": {"name": "p", "enabled": "yes"}}),
        ("/projects", {"project": {"name": "p", "is_domain": True}}),
        ("/projects", {"nothing": 1}),
        ("/users", {"user": {"password": "pw"}}),
        ("/users", {"user": {"name": "u", "default_project_id": "nope"}}),
    ]
    for path, body in bad:
        fault(await http.post(V3 + path, json=body, headers=admin), 400)
    other_domain = {"project": {"name": "p", "domain_id": "elsewhere"}}
    fault(await http.post(f"{V3}/projects", json=other_domain, headers=admin), 404)
    demo_id = gateway.accounts["demo"]["project_id"]
    null_name = {"project": {"name": None}}
    fault(await http.patch(f"{V3}/projects/{demo_id}", json=null_name, headers=admin), 400)


async def test_user_lifecycle_never_shows_password(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    project_id = gateway.accounts["demo"]["project_id"]
    body = {
        "user": {
            "name": "u2",
            "password": "first-pw",
            "default_project_id": project_id,
            "email": "u2@example.org",
            "enabled": True,
        }
    }
    user = ok(await http.post(f"{V3}/users", json=body, headers=admin), 201)["user"]
    assert "password" not in user and "password_hash" not in user
    assert user["default_project_id"] == project_id and user["email"] == "u2@example.org"
    assert user["password_expires_at"] is None and user["domain_id"] == "default"
    fault(await http.post(f"{V3}/users", json=body, headers=admin), 409)
    found = ok(await http.get(f"{V3}/users", params={"name": "u2"}, headers=admin))["users"]
    assert [u["id"] for u in found] == [user["id"]]
    assert all(
        "password" not in u for u in ok(await http.get(f"{V3}/users", headers=admin))["users"]
    )
    fault(await http.get(f"{V3}/users/u2", headers=admin), 404)
    role = ok(await http.get(f"{V3}/roles", params={"name": "member"}, headers=admin))["roles"][0]
    grant = f"{V3}/projects/{project_id}/users/{user['id']}/roles/{role['id']}"
    ok(await http.put(grant, headers=admin), 204)
    old = await gateway.login("u2", "first-pw", "demo")
    # The user may read itself and its projects, not other users.
    me = {"X-Auth-Token": old}
    assert ok(await http.get(f"{V3}/users/{user['id']}", headers=me))["user"]["name"] == "u2"
    mine = ok(await http.get(f"{V3}/users/{user['id']}/projects", headers=me))["projects"]
    assert [p["name"] for p in mine] == ["demo"]
    admin_id = gateway.accounts["admin"]["user_id"]
    fault(await http.get(f"{V3}/users/{admin_id}", headers=me), 403)
    fault(await http.get(f"{V3}/users/{admin_id}/projects", headers=me), 403)
    # A new password revokes the tokens of the old one.
    change = {"user": {"password": "second-pw", "description": "changed"}}
    patched = ok(await http.patch(f"{V3}/users/{user['id']}", json=change, headers=admin))["user"]
    assert patched["description"] == "changed" and "password" not in patched
    fault(await http.get(f"{V3}/auth/projects", headers=me), 401)
    await gateway.login("u2", "second-pw", "demo")
    ok(await http.delete(f"{V3}/users/{user['id']}", headers=admin), 204)
    fault(await http.get(f"{V3}/users/{user['id']}", headers=admin), 404)
    gone = await http.get(f"{V3}/role_assignments", params={"user.id": user["id"]}, headers=admin)
    assert ok(gone)["role_assignments"] == []


async def test_roles_domains_and_grants(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    roles = ok(await http.get(f"{V3}/roles", headers=admin))["roles"]
    assert [r["name"] for r in roles] == ["admin", "member", "reader"]
    assert all(r["domain_id"] is None and r["links"]["self"].endswith(r["id"]) for r in roles)
    by_name = {r["name"]: r for r in roles}
    shown = ok(await http.get(f"{V3}/roles/{by_name['reader']['id']}", headers=admin))["role"]
    assert shown["name"] == "reader"
    fault(await http.get(f"{V3}/roles/reader", headers=admin), 404)

    domains = ok(await http.get(f"{V3}/domains", params={"name": "Default"}, headers=admin))
    assert [(d["id"], d["name"], d["enabled"]) for d in domains["domains"]] == [
        ("default", "Default", True)
    ]
    other = await http.get(f"{V3}/domains", params={"name": "Other"}, headers=admin)
    assert ok(other)["domains"] == []
    ok(await http.get(f"{V3}/domains/default", headers=admin))
    fault(await http.get(f"{V3}/domains/other", headers=admin), 404)

    demo = gateway.accounts["demo"]
    admin_user = gateway.accounts["admin"]["user_id"]
    reader = by_name["reader"]["id"]
    grant = f"{V3}/projects/{demo['project_id']}/users/{admin_user}/roles/{reader}"
    assert (await http.head(grant, headers=admin)).status_code == 404
    ok(await http.put(grant, headers=admin), 204)
    ok(await http.put(grant, headers=admin), 204)  # granting twice is fine
    assert (await http.head(grant, headers=admin)).status_code == 204
    granted = ok(await http.get(grant.rsplit("/", 1)[0], headers=admin))["roles"]
    assert [r["name"] for r in granted] == ["reader"]
    unknown = f"{V3}/projects/{demo['project_id']}/users/{admin_user}/roles/nope"
    assert "role" in fault(await http.put(unknown, headers=admin), 404)

    query = {"scope.project.id": demo["project_id"], "include_names": "True"}
    listed = ok(await http.get(f"{V3}/role_assignments", params=query, headers=admin))
    pairs = sorted((a["user"]["name"], a["role"]["name"]) for a in listed["role_assignments"])
    assert pairs == [("admin", "reader"), ("demo", "member")]
    first = listed["role_assignments"][0]
    assert first["scope"]["project"]["name"] == "demo"
    assert first["links"]["assignment"].startswith(f"{PUBLIC_URL}/identity/v3/projects/")
    by_user = {"user.id": demo["user_id"]}
    plain = ok(await http.get(f"{V3}/role_assignments", params=by_user, headers=admin))
    assert [set(a["role"]) for a in plain["role_assignments"]] == [{"id"}]
    effective = ok(
        await http.get(f"{V3}/role_assignments", params={**by_user, "effective": ""}, headers=admin)
    )
    assert len(effective["role_assignments"]) == 2  # member, and reader implied by it
    none = await http.get(f"{V3}/role_assignments", params={"group.id": "g"}, headers=admin)
    assert ok(none)["role_assignments"] == []

    ok(await http.delete(grant, headers=admin), 204)
    fault(await http.delete(grant, headers=admin), 404)
    assert (await http.head(grant, headers=admin)).status_code == 404


async def test_members_are_refused_admin_calls(gateway: Gateway) -> None:
    member = {"X-Auth-Token": await gateway.demo_token()}
    http = gateway.http
    demo = gateway.accounts["demo"]
    admin_project = gateway.accounts["admin"]["project_id"]
    refused = [
        ("GET", "/projects", None),
        ("POST", "/projects", {"project": {"name": "mine"}}),
        ("GET", f"/projects/{admin_project}", None),
        ("PATCH", f"/projects/{demo['project_id']}", {"project": {"name": "x"}}),
        ("DELETE", f"/projects/{demo['project_id']}", None),
        ("GET", "/users", None),
        ("POST", "/users", {"user": {"name": "x"}}),
        ("PATCH", f"/users/{demo['user_id']}", {"user": {"enabled": True}}),
        ("DELETE", f"/users/{demo['user_id']}", None),
        ("GET", "/roles", None),
        ("GET", "/domains", None),
        ("GET", "/role_assignments", None),
        ("PUT", f"/projects/{demo['project_id']}/users/{demo['user_id']}/roles/x", None),
    ]
    for method, path, body in refused:
        reply = await http.request(method, V3 + path, json=body, headers=member)
        assert "not authorized" in fault(reply, 403), (method, path)
    # Its own project, domain and token are fine.
    ok(await http.get(f"{V3}/projects/{demo['project_id']}", headers=member))
    ok(await http.get(f"{V3}/domains/default", headers=member))
    # No token at all: 401 before anything else.
    fault(await http.get(f"{V3}/projects"), 401)
    fault(await http.post(f"{V3}/projects", json={"project": {"name": "n"}}), 401)


async def test_deleting_a_project_ends_its_tokens_and_grants(gateway: Gateway) -> None:
    admin = await admin_headers(gateway)
    http = gateway.http
    project = ok(
        await http.post(f"{V3}/projects", json={"project": {"name": "gone"}}, headers=admin), 201
    )["project"]
    admin_user = gateway.accounts["admin"]["user_id"]
    roles = ok(await http.get(f"{V3}/roles", params={"name": "admin"}, headers=admin))["roles"]
    grant = f"{V3}/projects/{project['id']}/users/{admin_user}/roles/{roles[0]['id']}"
    ok(await http.put(grant, headers=admin), 204)
    scoped = {"X-Auth-Token": await gateway.login("admin", ADMIN_PASSWORD, "gone")}
    ok(await http.get(f"{V3}/auth/projects", headers=scoped))
    ok(await http.delete(f"{V3}/projects/{project['id']}", headers=admin), 204)
    fault(await http.get(f"{V3}/auth/projects", headers=scoped), 401)
    query = {"scope.project.id": project["id"]}
    assert ok(await http.get(f"{V3}/role_assignments", params=query, headers=admin)) == {
        "role_assignments": [],
        "links": {
            "self": f"{PUBLIC_URL}/identity/v3/role_assignments?scope.project.id={project['id']}",
            "next": None,
            "previous": None,
        },
    }
