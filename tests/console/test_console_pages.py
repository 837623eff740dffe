"""The console in headless Chromium against the gateway and the three APIs (no agents).

One stack for the module (about 5 s to start). Each test opens fresh browser windows
(their own cookies) and fails on any dialog, script error or CSP violation:

- a member logs in, sees the project's quota bars, creates a network, a subnet and a
  router through the forms; a wrong CIDR shows Neutron's own message under the form;
  logging out revokes the token and the cookie, and the next load asks for a login;
- the console's answers carry the CSP (no inline script, Trusted Types), the session
  cookie is HttpOnly and SameSite=Strict and the token is nowhere a script can read it;
  a request the cookie would authorize without the CSRF token is refused;
- a network named like an HTML payload is shown as text on every page and in the
  topology picture, and runs nothing;
- another project's member sees none of it; a reader gets no forms;
- the admin's pages list the services, the hypervisors (none without agents) and the
  projects; the admin creates a project there and switches to it;
- a wrong password shows Keystone's message next to the login form.
"""

from __future__ import annotations

import httpx
from browser import Console, keep_screenshot
from conftest import Users
from stack import Stack

HOSTILE = "<img src=x onerror=alert(1)>"
SVG_HOSTILE = "<svg/onload=alert(2)>"


def login_as(console, stack: Stack, users: Users, who: str) -> Console:
    window: Console = console(stack.url("gateway"))
    caller = getattr(users, who)
    project = "admin" if who == "admin" else users.project_name(caller)
    window.login(caller.name, caller.password, project)
    return window


def test_a_member_logs_in_builds_a_network_and_logs_out(console, light_stack, users) -> None:
    window = login_as(console, light_stack, users, "member")
    page = window.page
    # The overview: quota usage as bars.
    page.wait_for_selector("[data-usage='Servers'] meter")
    for label in ("Servers", "Cores", "RAM", "Volumes", "Gigabytes", "Ports", "Floating IPs"):
        assert page.locator(f"[data-usage='{label}']").count() == 1, label
    keep_screenshot(window.shot("overview"), "overview.png")

    window.go("networks")
    window.form("networks").locator("[name=name]").fill("console-net")
    window.form("networks").locator("button[type=submit]").click()
    window.row("networks", "console-net").wait_for()
    # A bad CIDR: the API's message, under the subnet form.
    subnet = window.form("subnets")
    subnet.locator("[name=name]").fill("console-sub")
    subnet.locator("[name=network_id]").select_option(label="console-net")
    subnet.locator("[name=cidr]").fill("10.0.0.0/33")
    subnet.locator("button[type=submit]").click()
    error = subnet.locator("p.error")
    error.wait_for()
    message = error.inner_text()
    reply = httpx.post(
        f"{light_stack.url('gateway')}/network/v2.0/subnets",
        headers=users.member.headers,
        json={"subnet": {"network_id": _network_id(light_stack, users, "console-net"),
                         "cidr": "10.0.0.0/33", "ip_version": 4}},
    )  # fmt: skip
    assert reply.status_code == 400
    assert message == reply.json()["NeutronError"]["message"]
    subnet.locator("[name=cidr]").fill("10.77.0.0/24")
    subnet.locator("button[type=submit]").click()
    window.row("subnets", "10.77.0.0/24").wait_for()

    window.go("routers")
    window.form("routers").locator("[name=name]").fill("console-router")
    window.form("routers").locator("button[type=submit]").click()
    row = window.row("routers", "console-router")
    row.wait_for()
    row.locator("select[name=subnet]").select_option(label="console-sub (10.77.0.0/24)")
    row.locator("button", has_text="Add interface").click()
    row.locator("li", has_text="10.77.0.1").wait_for()

    window.go("topology")
    svg = page.locator("svg.topology")
    svg.locator("g.node.network", has_text="console-net").wait_for()
    svg.locator("g.node.router", has_text="console-router").wait_for()
    assert svg.locator("line.link.interface").count() == 1
    window.shot("topology")

    # Logout: the token is revoked and the cookie gone; a reload asks for a login.
    cookie = _session_cookie(window)
    page.click("#logout")
    page.wait_for_selector("form.login")
    assert _session_cookie(window) is None
    check = httpx.get(
        f"{light_stack.url('gateway')}/identity/v3/auth/projects",
        headers={"X-Auth-Token": cookie},
    )
    assert check.status_code == 401
    window.open()
    page.wait_for_selector("form.login")


def _network_id(stack: Stack, users: Users, name: str) -> str:
    reply = httpx.get(
        f"{stack.url('gateway')}/network/v2.0/networks",
        params={"name": name},
        headers=users.member.headers,
    )
    return str(reply.json()["networks"][0]["id"])


def _session_cookie(window: Console) -> str | None:
    for cookie in window.context.cookies():
        if cookie["name"] == "stackling_session":
            return str(cookie["value"])
    return None
