"""Identity v3 tokens over HTTP: issue, validate, revoke, discovery, catalog; on SQLite and
PostgreSQL."""

from __future__ import annotations

import statistics
import time

import pytest
from identity_fixtures import ADMIN_PASSWORD, DEMO_PASSWORD, PUBLIC_URL, Gateway, password_auth

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)

TOKENS = "/identity/v3/auth/tokens"


def keystone_error(reply, status: int) -> None:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == status and error["title"] and error["message"]


async def test_version_discovery_needs_no_token(gateway: Gateway) -> None:
    root = await gateway.http.get("/identity")
    assert root.status_code == 300
    (v3,) = root.json()["versions"]["values"]
    assert v3["id"] == "v3.14" and v3["status"] == "stable"
    assert v3["links"] == [{"rel": "self", "href": f"{PUBLIC_URL}/identity/v3/"}]
    assert v3["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"
    for path in ("/identity/", "/identity/v3", "/identity/v3/"):
        reply = await gateway.http.get(path, headers={"X-Auth-Token": "whatever"})
        assert reply.status_code in (200, 300), path
    assert (await gateway.http.get("/identity/v3")).json() == {"version": v3}


async def test_project_scoped_token_has_roles_and_catalog(gateway: Gateway) -> None:
    reply = await gateway.http.post(TOKENS, json=password_auth("admin", ADMIN_PASSWORD, "admin"))
    assert reply.status_code == 201, reply.text
    assert len(reply.headers["X-Subject-Token"]) >= 43
    token = reply.json()["token"]
    project_id = gateway.accounts["admin"]["project_id"]
    assert token["methods"] == ["password"]
    assert token["user"] == {
        "id": gateway.accounts["admin"]["user_id"],
        "name": "admin",
        "domain": {"id": "default", "name": "Default"},
        "password_expires_at": None,
    }
    assert token["project"] == {
        "id": project_id,
        "name": "admin",
        "domain": {"id": "default", "name": "Default"},
    }
    assert token["is_domain"] is False
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert token["expires_at"].endswith("Z") and token["issued_at"] < token["expires_at"]
    assert len(token["audit_ids"]) == 1
    by_type = {entry["type"]: entry for entry in token["catalog"]}
    assert set(by_type) == {"identity", "compute", "image", "network", "block-storage", "volumev3"}
    expected = {
        "identity": f"{PUBLIC_URL}/identity",
        "compute": f"{PUBLIC_URL}/compute/v2.1",
        "image": f"{PUBLIC_URL}/image",
        "network": f"{PUBLIC_URL}/network",
        "block-storage": f"{PUBLIC_URL}/volume/v3/{project_id}",
        "volumev3": f"{PUBLIC_URL}/volume/v3/{project_id}",
    }
    for kind, url in expected.items():
        endpoints = by_type[kind]["endpoints"]
        assert {e["interface"] for e in endpoints} == {"public", "internal", "admin"}
        assert {e["url"] for e in endpoints} == {url}
        assert {(e["region"], e["region_id"]) for e in endpoints} == {("RegionOne", "RegionOne")}


async def test_member_token_scoped_by_ids(gateway: Gateway) -> None:
    demo = gateway.accounts["demo"]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": demo["user_id"], "password": DEMO_PASSWORD}},
            },
            "scope": {"project": {"id": demo["project_id"]}},
        }
    }
    reply = await gateway.http.post(f"{TOKENS}?nocatalog", json=body)
    assert reply.status_code == 201, reply.text
    token = reply.json()["token"]
    assert {r["name"] for r in token["roles"]} == {"member", "reader"}
    assert "catalog" not in token


async def test_unscoped_and_default_project_tokens(gateway: Gateway) -> None:
    body = password_auth("demo", DEMO_PASSWORD)
    # No scope: the user's default project, as Keystone does.
    token = (await gateway.http.post(TOKENS, json=body)).json()["token"]
    assert token["project"]["name"] == "demo"
    body["auth"]["scope"] = "unscoped"
    reply = await gateway.http.post(TOKENS, json=body)
    assert reply.status_code == 201
    token = reply.json()["token"]
    assert not {"project", "roles", "catalog"} & set(token)
    unscoped = reply.headers["X-Subject-Token"]
    projects = await gateway.http.get(
        "/identity/v3/auth/projects", headers={"X-Auth-Token": unscoped}
    )
    assert [p["name"] for p in projects.json()["projects"]] == ["demo"]
    catalog = await gateway.http.get(
        "/identity/v3/auth/catalog", headers={"X-Auth-Token": unscoped}
    )
    keystone_error(catalog, 403)
    # Rescope the unscoped token to the project with the token method.
    rescope = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}},
        }
    }
    reply = await gateway.http.post(TOKENS, json=rescope)
    assert reply.status_code == 201, reply.text
    scoped = reply.json()["token"]
    assert scoped["project"]["name"] == "demo" and scoped["methods"][0] == "token"
    assert scoped["audit_ids"][1] == token["audit_ids"][0]
    assert scoped["expires_at"] <= token["expires_at"]


async def test_bad_credentials_are_401(gateway: Gateway) -> None:
    admin = {"X-Auth-Token": await gateway.admin_token()}
    await gateway.http.post(
        "/identity/v3/users", json={"user": {"name": "norole", "password": "pw"}}, headers=admin
    )
    refused = [
        password_auth("admin", "wrong", "admin"),
        password_auth("nobody", "pw", "admin"),
        password_auth("admin", ADMIN_PASSWORD, "no-such-project"),
        password_auth("norole", "pw", "demo"),  # no role on the project
    ]
    for body in refused:
        keystone_error(await gateway.http.post(TOKENS, json=body), 401)
    body = password_auth("admin", ADMIN_PASSWORD)
    body["auth"]["identity"]["methods"] = ["totp"]
    # Keystone asks for the named method's payload first (400), then refuses the method.
    keystone_error(await gateway.http.post(TOKENS, json=body), 400)
    body["auth"]["identity"]["totp"] = {"user": {"id": "x", "passcode": "123456"}}
    keystone_error(await gateway.http.post(TOKENS, json=body), 401)
    keystone_error(await gateway.http.post(TOKENS, json={"auth": {}}), 400)
    keystone_error(await gateway.http.post(TOKENS, content=b"{not json"), 400)


async def test_disabled_user_or_project_cannot_log_in(gateway: Gateway) -> None:
    admin = {"X-Auth-Token": await gateway.admin_token()}
    demo_token = await gateway.demo_token()
    demo = gateway.accounts["demo"]
    reply = await gateway.http.patch(
        f"/identity/v3/projects/{demo['project_id']}",
        json={"project": {"enabled": False}},
        headers=admin,
    )
    assert reply.status_code == 200
    keystone_error(
        await gateway.http.post(TOKENS, json=password_auth("demo", DEMO_PASSWORD, "demo")), 401
    )
    mine = await gateway.http.get(
        "/identity/v3/auth/projects", headers={"X-Auth-Token": demo_token}
    )
    keystone_error(mine, 401)  # its project is disabled: the scoped token is dead
    await gateway.http.patch(
        f"/identity/v3/projects/{demo['project_id']}",
        json={"project": {"enabled": True}},
        headers=admin,
    )
    await gateway.http.patch(
        f"/identity/v3/users/{demo['user_id']}", json={"user": {"enabled": False}}, headers=admin
    )
    keystone_error(await gateway.http.post(TOKENS, json=password_auth("demo", DEMO_PASSWORD)), 401)


async def test_validate_check_and_revoke(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    demo = await gateway.demo_token()
    both = {"X-Auth-Token": admin, "X-Subject-Token": demo}
    reply = await gateway.http.get(TOKENS, headers=both)
    assert reply.status_code == 200
    assert reply.headers["X-Subject-Token"] == demo
    assert reply.json()["token"]["user"]["name"] == "demo"
    assert "catalog" in reply.json()["token"]
    assert (
        "catalog"
        not in (await gateway.http.get(f"{TOKENS}?nocatalog", headers=both)).json()["token"]
    )
    head = await gateway.http.head(TOKENS, headers=both)
    assert head.status_code == 200 and head.content == b""
    # A member may look at its own token, not at another user's.
    own = await gateway.http.get(TOKENS, headers={"X-Auth-Token": demo, "X-Subject-Token": demo})
    assert own.status_code == 200
    other = await gateway.http.get(TOKENS, headers={"X-Auth-Token": demo, "X-Subject-Token": admin})
    keystone_error(other, 403)
    assert (await gateway.http.delete(TOKENS, headers=both)).status_code == 204
    keystone_error(await gateway.http.get(TOKENS, headers=both), 404)
    assert (await gateway.http.head(TOKENS, headers=both)).status_code == 404
    keystone_error(
        await gateway.http.get("/identity/v3/auth/projects", headers={"X-Auth-Token": demo}), 401
    )


async def test_forged_expired_and_missing_tokens(gateway: Gateway) -> None:
    admin = await gateway.admin_token()
    demo = gateway.accounts["demo"]
    expired, _ = await gateway.tokens.issue(demo["user_id"], demo["project_id"], ttl_s=-1)
    forged = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
    for bad in (forged, expired, "x" * 5000):
        keystone_error(
            await gateway.http.get("/identity/v3/auth/projects", headers={"X-Auth-Token": bad}), 401
        )
        subject = await gateway.http.get(
            TOKENS, headers={"X-Auth-Token": admin, "X-Subject-Token": bad}
        )
        keystone_error(subject, 404)
    keystone_error(await gateway.http.get("/identity/v3/auth/projects"), 401)
    # No X-Subject-Token: Keystone validates None and answers TokenNotFound.
    keystone_error(await gateway.http.get(TOKENS, headers={"X-Auth-Token": admin}), 404)


async def test_auth_catalog_and_projects(gateway: Gateway) -> None:
    demo = await gateway.demo_token()
    headers = {"X-Auth-Token": demo}
    catalog = (await gateway.http.get("/identity/v3/auth/catalog", headers=headers)).json()
    assert {entry["type"] for entry in catalog["catalog"]} >= {"identity", "compute", "volumev3"}
    projects = (await gateway.http.get("/identity/v3/auth/projects", headers=headers)).json()
    assert [p["name"] for p in projects["projects"]] == ["demo"]
    assert projects["links"] == {
        "self": f"{PUBLIC_URL}/identity/v3/auth/projects",
        "next": None,
        "previous": None,
    }


async def test_token_issue_time(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    body = password_auth("admin", ADMIN_PASSWORD, "admin")
    times = []
    for _ in range(11):
        started = time.perf_counter()
        reply = await gateway.http.post(TOKENS, json=body)
        times.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 201
    p50 = statistics.median(times[1:])  # the first one warms up the hasher
    with capsys.disabled():
        print(f"\ntoken issue p50 {p50:.1f} ms (argon2id m=19 MiB, t=2, p=1)")
    assert p50 < 1000
