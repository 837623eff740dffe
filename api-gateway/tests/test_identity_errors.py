"""Keystone's faults on the negative paths clients and Tempest take: status, title and the
exact message, one row per request (keystone/exception.py, keystone/api/validation,
keystone/auth/core.py and schema.py, tempest/api/identity/*negative*).

One gateway serves the whole table, with its bootstrap admin and demo accounts; no row
changes anything (the last test checks the accounts still log in).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from identity_fixtures import (
    ADMIN_PASSWORD,
    DEMO_PASSWORD,
    PUBLIC_URL,
    Gateway,
    build_app,
    gateway_settings,
    password_auth,
)

from api_gateway.domain.bootstrap import bootstrap
from common_rpc.testing import running_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKENS = "/identity/v3/auth/tokens"
NOT_COMPLY = (
    " The server could not comply with the request since it is either malformed or otherwise "
    "incorrect. The client is assumed to be in error."
)
LONG = "a" * 65

# (method, path, caller, headers, body) -> (status, message); caller is "admin", "demo" or
# None (no token); {admin} in a header is the admin's token.
TABLE: list[tuple[str, str, str | None, dict[str, str], Any, int, str]] = [
    # tokens: one 401 for every failure, Keystone's schema texts for bodies
    ("POST", TOKENS, None, {}, password_auth("admin", "wrong", "admin"), 401,
     "The request you have made requires authentication."),
    ("POST", TOKENS, None, {}, password_auth("nobody", "x", "admin"), 401,
     "The request you have made requires authentication."),
    ("POST", TOKENS, None, {}, password_auth("admin", ADMIN_PASSWORD, "nope"), 401,
     "The request you have made requires authentication."),
    ("POST", TOKENS, None, {}, password_auth("demo", DEMO_PASSWORD, "admin"), 401,
     "The request you have made requires authentication."),
    ("POST", TOKENS, None, {},
     {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
      "domain": {"name": "Default"}}}}}}, 401,
     "The request you have made requires authentication."),
    ("POST", TOKENS, None, {}, {}, 400, "Expecting to find auth in request body." + NOT_COMPLY),
    ("POST", TOKENS, None, {}, {"auth": {}}, 400, "'identity' is a required property"),
    ("POST", TOKENS, None, {}, {"auth": {"identity": {"methods": ["password"]}}}, 400,
     "Expecting to find password in identity." + NOT_COMPLY),
    ("POST", TOKENS, None, {}, {"auth": {"identity": {"methods": ["token"]}}}, 400,
     "Expecting to find token in identity." + NOT_COMPLY),
    ("POST", TOKENS, None, {}, {"auth": {"identity": {"methods": ["totp"]}}}, 400,
     "Expecting to find totp in identity." + NOT_COMPLY),
    ("POST", TOKENS, None, {}, {"auth": {"identity": {"methods": ["totp"], "totp": {}}}}, 401,
     "Attempted to authenticate with an unsupported method."),
    ("POST", TOKENS, None, {}, {"auth": {"identity": {"methods": "password"}}}, 400,
     "Invalid input for field 'identity/methods': 'password' is not of type 'array'"),
    ("POST", TOKENS, None, {},
     {"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "x"}}}}},
     400, "Invalid input for field identity/password/user: id or name must be present."),
    ("POST", TOKENS, None, {},
     {"auth": {**password_auth("admin", ADMIN_PASSWORD)["auth"], "scope": {"project": {}}}},
     400, "Invalid input for field scope/project: id or name must be present."),
    ("POST", TOKENS, None, {},
     {"auth": {**password_auth("admin", ADMIN_PASSWORD)["auth"],
               "scope": {"project": {"name": "admin"}}}},
     400, "Expecting to find domain in project." + NOT_COMPLY),
    ("POST", TOKENS, None, {}, "{not json", 400,
     "Expecting to find valid JSON in request body." + NOT_COMPLY),
    # token validation
    ("GET", TOKENS, "admin", {}, None, 404, "No token in the request"),
    ("GET", TOKENS, "admin", {"X-Subject-Token": "bogus"}, None, 404,
     "Could not find token: bogus."),
    ("GET", "/identity/v3/projects", None, {}, None, 401,
     "The request you have made requires authentication."),
    ("GET", "/identity/v3/projects", None, {"X-Auth-Token": "bogus"}, None, 401,
     "The request you have made requires authentication."),
    ("GET", "/identity/v3/auth/catalog", "unscoped", {}, None, 403,
     "A project-scoped token is required to produce a service catalog."),
    # policy
    ("GET", "/identity/v3/projects", "demo", {}, None, 403,
     "You are not authorized to perform the requested action: identity:list_projects."),
    ("POST", "/identity/v3/projects", "demo", {}, {"project": {"name": ""}}, 403,
     "You are not authorized to perform the requested action: identity:create_project."),
    ("DELETE", "/identity/v3/projects/{demo_project}", "demo", {}, None, 403,
     "You are not authorized to perform the requested action: identity:delete_project."),
    # projects
    ("POST", "/identity/v3/projects", "admin", {}, {"project": {"name": ""}}, 400,
     "Invalid input for field/attribute name. Value: . '' should be non-empty"),
    ("POST", "/identity/v3/projects", "admin", {}, {"project": {"name": LONG}}, 400,
     f"Invalid input for field/attribute name. Value: {LONG}. '{LONG}' is too long"),
    ("POST", "/identity/v3/projects", "admin", {}, {"project": {}}, 400,
     "Invalid input for field/attribute project. Value: {}. 'name' is a required property"),
    ("POST", "/identity/v3/projects", "admin", {}, {"project": {"name": "p", "enabled": "no"}},
     400, "Invalid input for field/attribute enabled. Value: no. 'no' is not of type 'boolean'"),
    ("POST", "/identity/v3/projects", "admin", {}, {"project": {"name": "demo"}}, 409,
     "Conflict occurred attempting to store project - Duplicate entry found with name demo "
     "at domain ID default."),
    ("GET", "/identity/v3/projects/nope", "admin", {}, None, 404,
     "Could not find project: nope."),
    ("DELETE", "/identity/v3/projects/nope", "admin", {}, None, 404,
     "Could not find project: nope."),
    ("PATCH", "/identity/v3/projects/{demo_project}", "admin", {}, {"project": {"name": None}},
     400, "Invalid input for field/attribute name. Value: None. None is not of type 'string'"),
    # users
    ("POST", "/identity/v3/users", "admin", {}, {"user": {"name": ""}}, 400,
     "Invalid input for field/attribute name. Value: . '' should be non-empty"),
    ("POST", "/identity/v3/users", "admin", {}, {}, 400, "'user' is a required property"),
    ("POST", "/identity/v3/users", "admin", {}, {"user": {"name": "u", "domain_id": "nodom"}},
     404, "Could not find domain: nodom."),
    ("POST", "/identity/v3/users", "admin", {}, {"user": {"name": "demo"}}, 409,
     "Conflict occurred attempting to store user - Duplicate entry found with name demo at "
     "domain ID default."),
    ("GET", "/identity/v3/users/nope", "admin", {}, None, 404, "Could not find user: nope."),
    # roles, grants, domains
    ("GET", "/identity/v3/roles/nope", "admin", {}, None, 404, "Could not find role: nope."),
    ("PUT", "/identity/v3/projects/nope/users/{demo_user}/roles/{member_role}", "admin", {},
     None, 404, "Could not find project: nope."),
    ("DELETE", "/identity/v3/projects/{admin_project}/users/{demo_user}/roles/{member_role}",
     "admin", {}, None, 404,
     "Could not find role assignment with role: {member_role}, user or group: {demo_user}, "
     "project, domain, or system: {admin_project}."),
    ("GET", "/identity/v3/domains/nope", "admin", {}, None, 404, "Could not find domain: nope."),
    ("DELETE", "/identity/v3/domains/default", "admin", {}, None, 403,
     "Cannot delete a domain that is enabled, please disable it first."),
    ("DELETE", "/identity/v3/domains/nope", "admin", {}, None, 404,
     "Could not find domain: nope."),
    ("DELETE", "/identity/v3/domains/default", "demo", {}, None, 403,
     "You are not authorized to perform the requested action: identity:delete_domain."),
]  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Gateway, dict[str, str]]]:
    data: Path = tmp_path_factory.mktemp("identity-errors")
    settings = gateway_settings(data, f"sqlite+aiosqlite:///{data}/gateway.db", PUBLIC_URL)
    app = build_app(settings)
    async with running_app(app, base_url=PUBLIC_URL) as http:
        accounts = await bootstrap(app.state.runtime.sessions, settings)
        gateway = Gateway(http, settings, app.state.deps.tokens, accounts)
        admin = await gateway.admin_token()
        roles = await http.get("/identity/v3/roles", headers={"X-Auth-Token": admin})
        names = {
            "admin": admin,
            "demo": await gateway.demo_token(),
            "demo_project": accounts["demo"]["project_id"],
            "admin_project": accounts["admin"]["project_id"],
            "demo_user": accounts["demo"]["user_id"],
            "member_role": {r["name"]: r["id"] for r in roles.json()["roles"]}["member"],
        }
        # The demo user's default project scopes a token without scope; ask for none.
        unscoped = await http.post(
            TOKENS,
            json={"auth": {**password_auth("demo", DEMO_PASSWORD)["auth"], "scope": "unscoped"}},
        )
        names["unscoped"] = unscoped.headers["X-Subject-Token"]
        yield gateway, names


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, real in names.items():
            value = value.replace("{" + name + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "caller", "headers", "body", "status", "message"),
    TABLE,
    ids=[f"{row[0]} {row[1]} {row[2]} {str(row[4])[:50]}" for row in TABLE],
)
async def test_keystone_fault(
    world: tuple[Gateway, dict[str, str]],
    method: str,
    path: str,
    caller: str | None,
    headers: dict[str, str],
    body: Any,
    status: int,
    message: str,
) -> None:
    gateway, names = world
    sent = {k: _fill(v, names) for k, v in headers.items()}
    if caller is not None:
        sent["X-Auth-Token"] = names[caller]
    if isinstance(body, str):  # not JSON at all
        sent["Content-Type"] = "application/json"
        extra: dict[str, Any] = {"content": body}
    else:
        extra = {"json": _fill(body, names)} if body is not None else {}
    reply = await gateway.http.request(method, _fill(path, names), headers=sent, **extra)
    assert reply.status_code == status, reply.text
    title = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    title[409] = "Conflict"
    assert reply.json() == {
        "error": {"code": status, "title": title[status], "message": _fill(message, names)}
    }


async def test_the_table_changed_nothing(world: tuple[Gateway, dict[str, str]]) -> None:
    gateway, names = world
    assert await gateway.admin_token() and await gateway.demo_token()
    admin = {"X-Auth-Token": names["admin"]}
    projects = (await gateway.http.get("/identity/v3/projects", headers=admin)).json()
    assert sorted(p["name"] for p in projects["projects"]) == ["admin", "demo"]
    users = (await gateway.http.get("/identity/v3/users", headers=admin)).json()["users"]
    assert sorted(u["name"] for u in users) == ["admin", "demo"]
