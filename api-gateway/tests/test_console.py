"""The web console's gateway side: its files and headers, its session, its cookie rules.

The gateway app in-process (SQLite, bootstrap accounts); the browser tests in
tests/console drive the same through Chromium.
"""

from __future__ import annotations

import pytest
from identity_fixtures import ADMIN_PASSWORD, DEMO_PASSWORD

from api_gateway.api.console import _with_token
from api_gateway.domain import console
from api_gateway.domain.console import Request, Use, csrf_token, decide

MARK = {"X-Stackling-Console": "1"}


def test_the_csrf_token_is_derived_from_the_session_and_gives_nothing_away() -> None:
    assert csrf_token("secret-a") == csrf_token("secret-a")
    assert csrf_token("secret-a") != csrf_token("secret-b")
    assert "secret-a" not in csrf_token("secret-a")


@pytest.mark.parametrize(
    ("method", "path", "site", "csrf", "marked", "use"),
    [
        ("GET", "/compute/v2.1/servers", b"same-origin", None, False, Use.IGNORE),
        ("POST", "/compute/v2.1/servers", b"same-origin", None, False, Use.IGNORE),
        ("POST", "/compute/v2.1/servers", b"same-origin", "good", False, Use.TOKEN),
        ("DELETE", "/network/v2.0/networks/1", None, "good", False, Use.TOKEN),
        ("POST", "/compute/v2.1/servers", b"same-origin", "wrong", False, Use.REFUSE),
        ("POST", "/compute/v2.1/servers", b"cross-site", "good", False, Use.IGNORE),
        ("GET", "/console/session", b"same-site", None, True, Use.IGNORE),
        ("GET", "/console/session", b"same-origin", None, True, Use.TOKEN),
        ("GET", "/console/session", b"same-origin", None, False, Use.IGNORE),
        ("DELETE", "/console/session", b"same-origin", None, True, Use.IGNORE),
        ("GET", "/v1/events", b"same-origin", None, False, Use.TOKEN),
        ("GET", "/v1/events", b"cross-site", None, False, Use.IGNORE),
        ("GET", "/image/v2/images/1/file", b"none", None, False, Use.IGNORE),
    ],
)
def test_when_the_cookie_stands_for_the_token(
    method: str, path: str, site: bytes | None, csrf: str | None, marked: bool, use: Use
) -> None:
    secret = "the-token"
    given = {"good": csrf_token(secret), "wrong": csrf_token("another")}.get(csrf or "")
    request = Request(method=method, path=path, fetch_site=site, csrf=given, console=marked)
    assert decide(request, secret) is use


def test_the_services_see_the_token_not_the_cookie_nor_the_csrf_token() -> None:
    headers = [
        (b"cookie", b"theme=dark; stackling_session=tok; lang=en"),
        (b"x-csrf-token", b"abc"),
        (b"accept", b"application/json"),
    ]
    out = _with_token(headers, "tok")
    assert (b"cookie", b"theme=dark; lang=en") in out
    assert (b"x-auth-token", b"tok") in out
    assert not any(name == b"x-csrf-token" for name, _ in out)
    alone = _with_token([(b"cookie", b"stackling_session=tok")], "tok")
    assert [name for name, _ in alone] == [b"x-auth-token"]


async def test_the_files_come_with_a_strict_content_security_policy(gateway) -> None:
    index = await gateway.http.get("/console/")
    assert index.status_code == 200 and "js/main.js" in index.text
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "trusted-types 'none'" in csp and "frame-ancestors 'none'" in csp
    script = await gateway.http.get("/console/js/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["content-security-policy"] == csp
    assert (await gateway.http.get("/console")).status_code == 307
    assert (await gateway.http.get("/console/js/nothing.js")).status_code == 404
    # Other paths keep their own headers.
    assert "content-security-policy" not in (await gateway.http.get("/identity/v3")).headers


async def test_login_sets_an_httponly_cookie_and_answers_no_token(gateway) -> None:
    body = {"username": "demo", "password": DEMO_PASSWORD, "project": "demo"}
    refused = await gateway.http.post("/console/session", json=body)
    assert refused.status_code == 400  # no X-Stackling-Console: not the console's request
    wrong = await gateway.http.post(
        "/console/session", json={**body, "password": "x"}, headers=MARK
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "The request you have made requires authentication."
    reply = await gateway.http.post("/console/session", json=body, headers=MARK)
    assert reply.status_code == 201, reply.text
    cookie = reply.headers["set-cookie"]
    secret = reply.cookies[console.COOKIE_NAME]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http://gateway.test
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert gateway.settings.token_ttl_s - 60 <= max_age <= gateway.settings.token_ttl_s
    session = reply.json()["session"]
    assert secret not in reply.text
    assert session["csrf_token"] == csrf_token(secret)
    assert session["token"]["project"]["name"] == "demo"
    assert {s["type"] for s in session["token"]["catalog"]} >= {"compute", "network"}


async def test_the_cookie_authorizes_only_with_its_csrf_token(gateway) -> None:
    body = {"username": "demo", "password": DEMO_PASSWORD, "project": "demo"}
    reply = await gateway.http.post("/console/session", json=body, headers=MARK)
    csrf = reply.json()["session"]["csrf_token"]
    http = gateway.http  # keeps the cookie, as a browser would
    assert (await http.get("/identity/v3/auth/projects")).status_code == 401
    wrong = await http.get("/identity/v3/auth/projects", headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert "CSRF" in wrong.json()["error"]["message"]
    ok = await http.get("/identity/v3/auth/projects", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    cross = await http.get(
        "/identity/v3/auth/projects", headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 401
    again = await http.get("/console/session", headers=MARK)
    assert again.status_code == 200 and again.json()["session"]["csrf_token"] == csrf
    # Logout revokes the token and clears the cookie.
    out = await http.delete("/console/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204 and "Max-Age=0" in out.headers["set-cookie"]
    secret = reply.cookies[console.COOKIE_NAME]
    assert await gateway.tokens.validate(secret) is None
    assert (await http.get("/console/session", headers=MARK)).status_code == 401


async def test_switching_project_issues_a_new_token_and_revokes_the_old(gateway) -> None:
    body = {"username": "admin", "password": ADMIN_PASSWORD, "project": "admin"}
    reply = await gateway.http.post("/console/session", json=body, headers=MARK)
    old = reply.cookies[console.COOKIE_NAME]
    csrf = reply.json()["session"]["csrf_token"]
    admin_token = await gateway.login("admin", ADMIN_PASSWORD, "admin")
    headers = {"X-Auth-Token": admin_token}
    projects = (await gateway.http.get("/identity/v3/projects", headers=headers)).json()
    demo = next(p["id"] for p in projects["projects"] if p["name"] == "demo")
    roles = (await gateway.http.get("/identity/v3/roles?name=member", headers=headers)).json()
    me = reply.json()["session"]["token"]["user"]["id"]
    grant = f"/identity/v3/projects/{demo}/users/{me}/roles/{roles['roles'][0]['id']}"
    assert (await gateway.http.put(grant, headers=headers)).status_code == 204
    switched = await gateway.http.put(
        "/console/session", json={"project_id": demo}, headers={"X-CSRF-Token": csrf}
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["session"]["token"]["project"]["name"] == "demo"
    new = switched.cookies[console.COOKIE_NAME]
    assert new != old
    assert await gateway.tokens.validate(old) is None
    assert (await gateway.tokens.validate(new)).project_id == demo
    # The old CSRF token no longer matches the session.
    stale = await gateway.http.get("/identity/v3/auth/projects", headers={"X-CSRF-Token": csrf})
    assert stale.status_code == 403


async def test_the_session_cookie_is_secure_under_tls(gateway) -> None:
    body = {"username": "demo", "password": DEMO_PASSWORD, "project": "demo"}
    reply = await gateway.http.post("https://gateway.test/console/session", json=body, headers=MARK)
    assert reply.status_code == 201
    assert "Secure" in reply.headers["set-cookie"]
