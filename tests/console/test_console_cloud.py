"""The console on the whole cloud: real agents, a stackling-tiny guest under QEMU.

The stack of tests/e2e (``cloud.start_cloud``: the gateway, the APIs and the network,
compute and volume agents on a RabbitMQ virtual host, every host object under one random
prefix). In headless Chromium, without ever reloading the page:

- a member creates a network, a subnet and a router with an interface on it; launches a
  stackling-tiny server from the launch form and watches its row go from BUILD to ACTIVE
  (the event stream, no polling); reads the guest's DHCP line in the console log; creates
  a volume and attaches it; sees the server on its network in the topology picture;
- meanwhile the admin's hypervisor page shows the host's usage go up, live;
- a second project's member sees none of it;
- the member detaches, deletes everything through the console, and afterwards every
  service lists nothing of the project, nothing is left on the host and ``stackling
  audit`` is clean.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from browser import Console, chromium, keep_screenshot, off_loop
from cloud import (
    AUDITED,
    GUEST_TIMEOUT_S,
    Cloud,
    assert_host_clean,
    assert_project_empty,
    flavor_of,
    start_cloud,
    tiny_image_of,
)
from tenant import entered, other_project

SCENARIO_TIMEOUT_S = 480
# Records every status a row of the server list shows, as the page changes it.
WATCH_ROW = """(name) => {
  window.__seen = [];
  window.__stay = "same page";
  const box = document.querySelector("[data-list=servers]");
  const look = () => {
    const row = [...box.querySelectorAll("tr")].find((r) => r.textContent.includes(name));
    const badge = row && row.querySelector("td.status .badge");
    const status = badge && badge.dataset.status;
    if (status && window.__seen[window.__seen.length - 1] !== status) window.__seen.push(status);
  };
  new MutationObserver(look).observe(box, {subtree: true, childList: true, attributes: true});
  look();
}"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    yield from start_cloud(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(cloud: Cloud) -> Iterator[Any]:
    """Closed before the cloud stops: its teardown runs asyncio (netlink) on this thread."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def tiny_image(cloud: Cloud) -> Iterator[str]:
    yield from tiny_image_of(cloud)


@pytest.fixture(scope="module")
def flavor(cloud: Cloud) -> Iterator[str]:
    yield from flavor_of(cloud)


def member_window(console: Any, cloud: Cloud, project: str) -> Console:
    window: Console = console(cloud.stack.url("gateway"))
    window.login(cloud.caller.name, cloud.caller.password, project)
    return window


def hypervisor_row(window: Console, host: str) -> Any:
    return window.row("hypervisors", host)


@pytest.mark.timeout(SCENARIO_TIMEOUT_S)
def test_a_member_builds_boots_attaches_and_deletes_through_the_console(
    console: Any, cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    lab = cloud.lab
    octet = 100 + secrets.randbelow(100)
    cidr = f"10.{octet}.7.0/24"
    project = f"servers-{lab.prefix}"
    flavor_name = f"tiny-{lab.prefix}"
    admin = console(cloud.stack.url("gateway"))
    admin.login("admin", cloud.stack.admin_password, "admin")
    admin.go("admin/hypervisors")
    hv = hypervisor_row(admin, lab.host)
    hv.wait_for()
    running_before = int(hv.locator("td.running").inner_text())
    admin.page.evaluate("window.__stay = 'same page'")
    vcpus_before = hv.locator("[data-usage=vCPUs] .usage-text").inner_text()

    window = member_window(console, cloud, project)
    page = window.page
    page.evaluate("window.__stay = 'same page'")

    # A network, a subnet and a router with an interface on it.
    window.go("networks")
    window.form("networks").locator("[name=name]").fill("web-net")
    window.form("networks").locator("button[type=submit]").click()
    window.row("networks", "web-net").wait_for()
    subnet = window.form("subnets")
    subnet.locator("[name=name]").fill("web-sub")
    subnet.locator("[name=network_id]").select_option(label="web-net")
    subnet.locator("[name=cidr]").fill(cidr)
    subnet.locator("button[type=submit]").click()
    window.row("subnets", cidr).wait_for()
    window.go("routers")
    window.form("routers").locator("[name=name]").fill("web-router")
    window.form("routers").locator("button[type=submit]").click()
    router = window.row("routers", "web-router")
    router.wait_for()
    router.locator("select[name=subnet]").select_option(label=f"web-sub ({cidr})")
    router.locator("button", has_text="Add interface").click()
    router.locator("li", has_text=f"10.{octet}.7.1").wait_for()

    # Launch, and watch the row turn ACTIVE from the event stream.
    window.go("servers")
    launch = window.form("launch")
    launch.locator("[name=name]").fill("web-1")
    launch.locator("[name=image]").select_option(label="stackling-tiny")
    launch.locator("[name=flavor]").select_option(value=flavor)
    launch.locator("[name=network]").select_option(label="web-net")
    page.evaluate(WATCH_ROW, "web-1")
    launch.locator("button[type=submit]").click()
    row = window.row("servers", "web-1")
    row.locator("td.status [data-status=ACTIVE]").wait_for(timeout=120_000)
    seen = page.evaluate("window.__seen")
    assert seen[0] == "BUILD" and seen[-1] == "ACTIVE", seen
    assert flavor_name in row.inner_text()
    keep_screenshot(window.shot("servers-active"), "servers.png")

    # The admin's page followed, without a reload.
    hv.locator("td.running", has_text=str(running_before + 1)).wait_for(timeout=30_000)
    assert hv.locator("[data-usage=vCPUs] .usage-text").inner_text() != vcpus_before
    admin.shot("hypervisor-usage")

    # The guest's DHCP line in its console log.
    row.locator("a.server-link").click()
    detail = page.locator("section.detail[data-server]")
    detail.wait_for()
    deadline = time.monotonic() + GUEST_TIMEOUT_S
    log = detail.locator("pre.console-log")
    while f"stackling-guest: ip 10.{octet}.7." not in log.inner_text():
        assert time.monotonic() < deadline, f"no DHCP line in the console: {log.inner_text()}"
        detail.locator("button[data-action=console-log]").click()
        time.sleep(3)

    # A volume, attached from the server's details.
    window.go("volumes")
    window.form("volumes").locator("[name=name]").fill("web-vol")
    window.form("volumes").locator("button[type=submit]").click()
    window.row("volumes", "web-vol").locator("[data-status=available]").wait_for(timeout=60_000)
    window.go("servers")
    window.row("servers", "web-1").locator("a.server-link").click()
    attach = window.page.locator("form[data-form=attach-volume]")
    attach.locator("[name=volume]").select_option(label="web-vol")
    attach.locator("button[type=submit]").click()
    attached = page.locator("table[data-table=attachments] tbody tr", has_text="web-vol")
    attached.locator("[data-status=in-use]").wait_for(timeout=90_000)

    # The topology: the server on its network, behind the router.
    window.go("topology")
    svg = page.locator("svg.topology")
    server_node = svg.locator("g.node.server", has_text="web-1")
    server_node.wait_for()
    net_id = svg.locator("g.node.network", has_text="web-net").get_attribute("data-id")
    server_id = server_node.get_attribute("data-id")
    assert svg.locator(f"line.link.port[data-from='{server_id}'][data-to='{net_id}']").count() == 1
    assert svg.locator("g.node.router", has_text="web-router").count() == 1
    keep_screenshot(window.shot("topology"), "topology.png")

    # Another project's member sees none of it.
    with ExitStack() as scope:
        other = scope.enter_context(entered(other_project(cloud, "console-b")))
        stranger: Console = console(cloud.stack.url("gateway"))
        stranger.login(other.caller.name, other.caller.password, f"console-b-{lab.prefix}")
        stranger.go("servers")
        stranger.page.locator("[data-list=servers] .empty").wait_for()
        stranger.go("networks")
        stranger.page.locator("[data-list=networks]").wait_for()
        assert "web-net" not in stranger.page.locator("[data-list=networks]").inner_text()
        stranger.go("topology")
        stranger.page.locator("svg.topology").wait_for()
        assert stranger.page.locator("svg.topology g.node.server").count() == 0

    # Everything deleted through the console.
    window.go("servers")
    window.row("servers", "web-1").locator("a.server-link").click()
    attached = page.locator("table[data-table=attachments] tbody tr", has_text="web-vol")
    attached.locator("button", has_text="Detach").click()
    page.locator("table[data-table=attachments] tbody tr", has_text="web-vol").wait_for(
        state="detached", timeout=90_000
    )
    delete = window.row("servers", "web-1").locator("button[data-action=Delete]")
    delete.click()
    delete.click()  # the second click confirms
    window.row("servers", "web-1").wait_for(state="detached", timeout=90_000)
    window.go("volumes")
    vol = window.row("volumes", "web-vol")
    vol.locator("[data-status=available]").wait_for(timeout=60_000)
    vol.locator("button[data-action=Delete]").click()
    vol.locator("button[data-action=Delete]").click()
    vol.wait_for(state="detached", timeout=60_000)
    window.go("routers")
    router = window.row("routers", "web-router")
    router.locator("li button", has_text="Remove").click()
    router.locator("li").wait_for(state="detached")
    router.locator("button[data-action=Delete]").click()
    router.locator("button[data-action=Delete]").click()
    router.wait_for(state="detached")
    window.go("networks")
    sub = window.row("subnets", cidr)
    sub.locator("button[data-action=Delete]").click()
    sub.locator("button[data-action=Delete]").click()
    sub.wait_for(state="detached")
    net = window.row("networks", "web-net")
    net.locator("button[data-action=Delete]").click()
    net.locator("button[data-action=Delete]").click()
    net.wait_for(state="detached")
    hv.locator("td.running", has_text=str(running_before)).wait_for(timeout=30_000)
    assert page.evaluate("window.__stay") == "same page"  # never reloaded
    assert admin.page.evaluate("window.__stay") == "same page"

    assert_project_empty(cloud)
    off_loop(assert_host_clean, lab)
    assert off_loop(cloud.findings) == {svc: [] for svc in AUDITED}
