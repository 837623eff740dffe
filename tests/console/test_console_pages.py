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


def test_the_token_stays_in_an_httponly_cookie_and_the_page_runs_only_its_own_code(
    console, light_stack, users
) -> None:
    gateway = light_stack.url("gateway")
    answer = httpx.get(f"{gateway}/console/")
    assert answer.status_code == 200 and "js/main.js" in answer.text
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "require-trusted-types-for 'script'" in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"

    window = login_as(console, light_stack, users, "member")
    page = window.page
    (cookie,) = [c for c in window.context.cookies() if c["name"] == "stackling_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here; the gateway adds Secure under TLS
    token = cookie["value"]
    seen_by_scripts = page.evaluate(
        "() => [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage),"
        " document.documentElement.outerHTML, location.href].join(' ')"
    )
    assert token not in seen_by_scripts
    # The cookie alone authorizes nothing; a wrong CSRF token is refused outright.
    statuses = page.evaluate(
        """async () => {
          const plain = await fetch("/identity/v3/auth/projects");
          const wrong = await fetch("/identity/v3/auth/projects", {headers: {"X-CSRF-Token": "x"}});
          const post = await fetch("/network/v2.0/networks", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({network: {name: "forged"}})});
          return [plain.status, wrong.status, post.status];
        }"""
    )
    assert statuses == [401, 403, 401]
    listed = httpx.get(f"{gateway}/network/v2.0/networks", headers=users.member.headers)
    assert "forged" not in listed.text
    # Trusted Types: no HTML string reaches the DOM, whoever tries.
    refused = page.evaluate(
        "() => { try { document.body.innerHTML = '<b>x</b>'; return 'allowed'; }"
        " catch (e) { return e.name; } }"
    )
    assert refused == "TypeError"
    page.evaluate("window.__csp = []")  # that violation was this test's own


def test_hostile_names_show_as_text_everywhere(console, light_stack, users) -> None:
    gateway = light_stack.url("gateway")
    made: list[str] = []
    with httpx.Client(base_url=gateway, headers=users.member.headers) as api:
        net = api.post("/network/v2.0/networks", json={"network": {"name": HOSTILE}})
        net_id = net.json()["network"]["id"]
        made.append(f"/network/v2.0/networks/{net_id}")
        sub = api.post(
            "/network/v2.0/subnets",
            json={"subnet": {"name": SVG_HOSTILE, "network_id": net_id, "cidr": "10.66.0.0/24",
                             "ip_version": 4}},
        )  # fmt: skip
        router = api.post("/network/v2.0/routers", json={"router": {"name": SVG_HOSTILE}})
        router_id = router.json()["router"]["id"]
        made.insert(0, f"/network/v2.0/routers/{router_id}")
        api.put(
            f"/network/v2.0/routers/{router_id}/add_router_interface",
            json={"subnet_id": sub.json()["subnet"]["id"]},
        ).raise_for_status()
        group = api.post(
            "/network/v2.0/security-groups", json={"security_group": {"name": HOSTILE}}
        )
        made.append(f"/network/v2.0/security-groups/{group.json()['security_group']['id']}")
        pid = users.member.project_id
        vol = api.post(f"/volume/v3/{pid}/volumes", json={"volume": {"name": HOSTILE, "size": 1}})
        made.append(f"/volume/v3/{pid}/volumes/{vol.json()['volume']['id']}")
        try:
            window = login_as(console, light_stack, users, "member")
            page = window.page
            for page_id, table in (
                ("networks", "networks"),
                ("routers", "routers"),
                ("security-groups", "security-groups"),
                ("volumes", "volumes"),
            ):
                window.go(page_id)
                name = HOSTILE if table != "routers" else SVG_HOSTILE
                cell = page.locator(f"table[data-table='{table}'] tbody td.name")
                cell.filter(has_text=name).first.wait_for()
                assert name in cell.all_inner_texts()  # the very characters, as text
            window.go("topology")
            page.locator("svg.topology g.node.network", has_text=HOSTILE).wait_for()
            page.locator("svg.topology g.node.router", has_text="<svg/onload").wait_for()
            window.shot("hostile")
            assert page.locator("img[src=x], svg svg").count() == 0
            assert page.evaluate("window.__csp") == []
        finally:
            api.put(
                f"/network/v2.0/routers/{router_id}/remove_router_interface",
                json={"subnet_id": sub.json()["subnet"]["id"]},
            )
            for path in made:
                api.delete(path)


def test_another_project_sees_nothing_and_a_reader_changes_nothing(
    console, light_stack, users
) -> None:
    gateway = light_stack.url("gateway")
    name = f"private-{users.suffix}"
    reply = httpx.post(
        f"{gateway}/network/v2.0/networks",
        headers=users.member.headers,
        json={"network": {"name": name}},
    )
    net_id = reply.json()["network"]["id"]
    try:
        stranger = login_as(console, light_stack, users, "other")
        stranger.go("networks")
        stranger.page.locator("table[data-table=networks]").wait_for()
        assert name not in stranger.page.locator("[data-list=networks]").inner_text()
        stranger.go("topology")
        stranger.page.locator("svg.topology").wait_for()
        assert name not in stranger.page.locator("svg.topology").inner_html()

        reader = login_as(console, light_stack, users, "reader")
        reader.go("networks")
        reader.row("networks", name).wait_for()
        assert reader.page.locator("details.create, button[data-action=Delete]").count() == 0
        reader.go("servers")
        reader.page.locator("[data-list=servers] .empty").wait_for()
        assert reader.page.locator("form[data-form=launch]").count() == 0
    finally:
        httpx.delete(f"{gateway}/network/v2.0/networks/{net_id}", headers=users.member.headers)


def test_a_wrong_password_shows_the_identity_apis_message(console, light_stack, users) -> None:
    window: Console = console(light_stack.url("gateway"))
    window.open()
    window.page.fill("#login-user", users.member.name)
    window.page.fill("#login-password", "not-the-password")
    window.page.click("form.login button[type=submit]")
    error = window.page.locator("form.login p.error")
    error.wait_for()
    assert error.inner_text() == "The request you have made requires authentication."


def test_an_admin_manages_projects_and_switches_to_one(console, light_stack, users) -> None:
    window = login_as(console, light_stack, users, "admin")
    page = window.page
    window.go("admin/services")
    page.locator("[data-list=services] h2", has_text="Network").wait_for()
    window.go("admin/hypervisors")
    page.locator("[data-list=hypervisors] table").wait_for()
    window.go("admin/identity")
    name = f"switch-{users.suffix}"
    projects = window.form("projects")
    projects.locator("[name=name]").fill(name)
    projects.locator("button[type=submit]").click()
    window.row("projects", name).wait_for()
    assign = window.form("role-assignments")
    assign.locator("[name=user]").select_option(label="admin")
    assign.locator("[name=project]").select_option(label=name)
    assign.locator("[name=role]").select_option(label="member")
    assign.locator("button[type=submit]").click()
    window.row("role-assignments", name).wait_for()
    keep_screenshot(window.shot("identity"), "admin-identity.png")
    # A reload finds the session again (the cookie), with the new project to switch to;
    # after the switch the session holds a token of that project and the old one is revoked.
    old = _session_cookie(window)
    page.reload()
    page.wait_for_selector("#live-status[data-state=live]")
    page.select_option("#project-switch", label=name)
    # A member there, not an admin: the admin pages go, the overview is of that project.
    page.locator("h1", has_text=f"Overview of {name}").wait_for()
    assert page.locator("nav a[data-page^='admin/']").count() == 0
    assert _session_cookie(window) != old
    gone = httpx.get(
        f"{light_stack.url('gateway')}/identity/v3/auth/projects", headers={"X-Auth-Token": old}
    )
    assert gone.status_code == 401


def test_an_image_uploads_from_the_browser(console, light_stack, users) -> None:
    window = login_as(console, light_stack, users, "member")
    window.go("images")
    upload = window.form("images")
    upload.locator("[name=name]").fill("browser-raw")
    upload.locator("[name=disk_format]").select_option("raw")
    payload = b"stackling" * 1000
    upload.locator("[name=file]").set_input_files(
        files=[{"name": "disk.raw", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    upload.locator("button[type=submit]").click()
    row = window.row("images", "browser-raw")
    row.locator("[data-status=active]").wait_for()
    assert "8.8 KiB" in row.inner_text()
    row.locator("button[data-action=Delete]").click()
    row.locator("button[data-action=Delete]").click()
    row.wait_for(state="detached")


def test_key_pairs_and_security_group_rules_through_the_forms(console, light_stack, users) -> None:
    window = login_as(console, light_stack, users, "member")
    page = window.page
    window.go("keypairs")
    keys = window.form("keypairs")
    keys.locator("[name=name]").fill(f"key-{users.suffix}")
    keys.locator("button[type=submit]").click()
    window.row("keypairs", f"key-{users.suffix}").wait_for()
    assert "PRIVATE KEY" in page.locator(".created-key pre").inner_text()
    row = window.row("keypairs", f"key-{users.suffix}")
    row.locator("button[data-action=Delete]").click()
    row.locator("button[data-action=Delete]").click()
    row.wait_for(state="detached")

    window.go("security-groups")
    groups = window.form("security-groups")
    groups.locator("[name=name]").fill(f"web-{users.suffix}")
    groups.locator("button[type=submit]").click()
    group = window.row("security-groups", f"web-{users.suffix}")
    group.wait_for()
    group.locator("summary", has_text="Add rule").click()
    rule = group.locator("form")
    rule.locator("[name=protocol]").select_option("tcp")
    rule.locator("[name=port_min]").fill("22")
    rule.locator("[name=remote_ip_prefix]").fill("192.0.2.0/24")
    rule.locator("button[type=submit]").click()
    group.locator("li", has_text="ingress IPv4 tcp port 22 from 192.0.2.0/24").wait_for()
    # The same rule again: Neutron's conflict, beside the form.
    rule = window.row("security-groups", f"web-{users.suffix}").locator("form")
    if rule.locator("[name=protocol]").is_hidden():
        group.locator("summary", has_text="Add rule").click()
    rule.locator("[name=protocol]").select_option("tcp")
    rule.locator("[name=port_min]").fill("22")
    rule.locator("[name=remote_ip_prefix]").fill("192.0.2.0/24")
    rule.locator("button[type=submit]").click()
    error = rule.locator("p.error")
    error.wait_for()
    assert "already exists" in error.inner_text()
    group.locator("button[data-action=Delete]").last.click()
    group.locator("button[data-action=Delete]").last.click()
    group.wait_for(state="detached")
