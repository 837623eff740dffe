"""Real servers through the gateway: QEMU guests on networks the network-agent wires.

One stack for the module: the gateway, the four APIs and the network, compute and volume
agents (libvirt ``qemu:///system``, TCG; tgt), on a RabbitMQ virtual host of their own,
every host object under one random prefix (``HostLab``).

- a tenant's whole scenario, as the member of a fresh project (``tenant.Tenant``): a
  network behind a router with an external gateway, an ICMP rule, a key pair made with
  the ``openstack`` CLI, a volume and two stackling-tiny servers (one with the key). Each
  console, fetched through the API, shows its DHCP address, pings of the peer and the
  router, and whether the key pair is in its config drive. A floating IP reaches one from
  a namespace on the external network; ``openstack server/network/volume list`` show the
  scenario's objects. The volume, written by one guest, is moved to the other, which
  reads it back. Deleting everything leaves every service's list empty for the project,
  nothing with the prefix on the host, and ``audit`` of every service clean.
- meanwhile a second project, on a network of the same CIDR, boots one server: it and
  the first project's guests ping each other's addresses (while each answers its own
  project) and none answers. Its member cannot boot on the first project's network, port
  or private image, nor attach its volume (400/404, nothing made). Both members' event
  streams (``/v1/events``) bring each server's, port's and volume's lifecycle in order,
  each event once, and nothing of the other project.
- with network-api stopped, a boot ends in ERROR with a fault within the build timeout;
  once network-api is back, the server deletes and nothing is leaked (audit clean).
- with network-api frozen past compute's deadline, then thawed, the ports it makes for
  requests nobody waits for any more go with the server's delete.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud import (
    AUDITED,
    BUILD_TIMEOUT_S,
    GUEST_TIMEOUT_S,
    Cloud,
    assert_host_clean,
    assert_project_empty,
    boot,
    call,
    delete_servers,
    drop_client,
    external_client,
    flavor_of,
    ping,
    restart,
    routers_seen,
    run_all,
    start_cloud,
    status,
    tiny_image_of,
    volume_status,
    wait_until,
)
from tenant import (
    OUTSIDE_HOST,
    Cli,
    EventTap,
    Steps,
    Tenant,
    entered,
    external_network,
    guest_script,
    md5_fingerprint,
    new_public_key,
    other_project,
    pattern,
)

from network_svc.drivers.names import Names

SCENARIO_TIMEOUT_S = 420  # the cloud's start included; ~2 minutes on a quiet machine
ISOLATION_S = 10.0  # the least time every guest pings the other project's live addresses
SERVER_LIFE = [f"compute.server.{x}" for x in ("create.start", "create.end", "delete.start",
                                               "delete.end")]  # fmt: skip
# A server that had a volume attached and detached once, between its create and delete.
SERVER_WITH_VOLUME = [
    *SERVER_LIFE[:2],
    *(f"compute.server.{x}" for x in ("attach.start", "attach.end", "detach.start", "detach.end")),
    *SERVER_LIFE[2:],
]
PORT_LIFE = ["network.port.create.end", "network.port.delete.end"]
VOLUME_LIFE = [f"volume.volume.{x}.end" for x in ("create", "attach", "detach", "delete")]
# Ports on the external network the project's router and floating IP hold: no project's
# own (as in Neutron), their events go to the project whose request made them.
NO_PROJECT_PORTS = ("network:router_gateway", "network:floatingip")
# Events whose count may vary (a port's binding and status changes).
UPDATES = ("network.port.update.end", "volume.volume.update.end", "compute.server.update.end")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    yield from start_cloud(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_image(cloud: Cloud) -> Iterator[str]:
    yield from tiny_image_of(cloud)


@pytest.fixture(scope="module")
def flavor(cloud: Cloud) -> Iterator[str]:
    yield from flavor_of(cloud)


@pytest.mark.timeout(SCENARIO_TIMEOUT_S)
def test_a_tenant_scenario_works_end_to_end_and_another_project_sees_none_of_it(
    cloud: Cloud, tiny_image: str, flavor: str, tmp_path: Path
) -> None:
    steps = Steps()
    octet = 100 + secrets.randbelow(100)
    base = f"10.{octet}.1"  # both projects' CIDR
    a_ips, b_ip, gateway = (f"{base}.21", f"{base}.22"), f"{base}.23", f"{base}.1"
    undo: list[Callable[[], Any]] = []  # run last to first, also when the test failed
    with contextlib.ExitStack() as scope:
        other = scope.enter_context(entered(other_project(cloud, "isolated")))
        b_image = scope.enter_context(entered(tiny_image_of(other)))
        taps = [EventTap(cloud.stack.url("gateway"), c.caller.token) for c in (cloud, other)]
        for tap in taps:
            tap.start()
            scope.callback(tap.stop)
        tap_a, tap_b = taps
        a, b = Tenant(cloud, undo), Tenant(other, undo)
        try:
            steps.done("second project, event streams")
            ext = external_network(cloud, f"10.{octet}.254.0/24", undo)
            a.network(f"{base}.0/24", pool=(100, 200), external=ext, name="e2e-net")
            b.network(f"{base}.0/24", pool=(30, 60), name="isolated-net")
            a.allow_icmp()
            b.allow_icmp()
            key = new_public_key(f"e2e-{cloud.lab.prefix}")
            (tmp_path / "key.pub").write_text(key)
            cli = Cli(cloud, tmp_path)
            made = cli.run("keypair", "create", "--public-key", str(tmp_path / "key.pub"), "e2e")
            a.forget_keypair("e2e")
            assert (made["name"], made["fingerprint"]) == ("e2e", md5_fingerprint(key)), made
            a.volume()
            b.volume()
            a_dhcp, b_dhcp = a.dhcp_address(), b.dhcp_address()
            steps.done("networks, router, rules, key pair (CLI), volumes")

            patterns = (pattern(), pattern())
            for name, ip, peer, key_name in (
                ("vm0", a_ips[0], a_ips[1], "e2e"),
                ("vm1", a_ips[1], a_ips[0], None),
            ):
                script = guest_script(
                    wait_for=peer,
                    answer=[peer, gateway],
                    away=[b_ip, b_dhcp],
                    key=key if key_name else None,
                    pattern=patterns[0],
                )
                extra = {"key_name": key_name} if key_name else {}
                a.boot(name, tiny_image, flavor, ip, script, **extra)
            script = guest_script(
                wait_for=b_dhcp, answer=[b_dhcp], away=[*a_ips, a_dhcp], key=key,
                pattern=patterns[1],
            )  # fmt: skip
            b.boot("b0", b_image, flavor, b_ip, script)
            free_port = call(
                a.http, "POST", "/network/v2.0/ports", 201, json={"port": {"network_id": a.net_id}}
            )["port"]["id"]
            undo.append(lambda: a.http.delete(f"/network/v2.0/ports/{free_port}"))
            refuse_boot(b, "another project's port", b_image, flavor, [{"port": free_port}])
            refuse_boot(b, "another project's image", tiny_image, flavor, [{"uuid": b.net_id}])
            views = [a.active(sid) for sid in a.servers] + [b.active(b.servers[0])]
            steps.done("3 servers ACTIVE")
            vm0, vm1, b0 = *a.servers, b.servers[0]
            nets = ("e2e-net", "e2e-net", "isolated-net")
            for view, ip, net in zip(views, (*a_ips, b_ip), nets, strict=True):
                assert [x["addr"] for x in view["addresses"][net]] == [ip], view
            assert [v["key_name"] for v in views] == ["e2e", None, None], views
            attach = f"/compute/v2.1/servers/{b0}/os-volume_attachments"
            refused(
                b.http.post(attach, json={"volumeAttachment": {"volumeId": a.volume_id}}),
                "another project's volume",
            )
            assert [s["id"] for s in b.http.get("/compute/v2.1/servers").json()["servers"]] == [b0]
            port = call(a.http, "GET", f"/network/v2.0/ports/{free_port}", 200)["port"]
            assert port["device_id"] == "", port
            assert volume_status(cloud, a.volume_id, "available")

            consoles = {
                vm0: a.console_until(vm0, f"stackling-guest: ip {a_ips[0]}/24",
                                     f"e2e: ping {a_ips[1]} ok", f"e2e: ping {gateway} ok",
                                     "e2e: key present", "e2e: away start",
                                     timeout=GUEST_TIMEOUT_S),
                vm1: a.console_until(vm1, f"stackling-guest: ip {a_ips[1]}/24",
                                     f"e2e: ping {a_ips[0]} ok", f"e2e: ping {gateway} ok",
                                     "e2e: key absent", "e2e: away start",
                                     timeout=GUEST_TIMEOUT_S),
                b0: b.console_until(b0, f"stackling-guest: ip {b_ip}/24",
                                    f"e2e: ping {b_dhcp} ok", "e2e: key absent",
                                    "e2e: away start", timeout=GUEST_TIMEOUT_S),
            }  # fmt: skip
            all_alive = time.monotonic()  # every guest answers its own project from here on
            failed = [x for out in consoles.values() for x in out.splitlines()
                      if x.startswith("e2e:") and "failed" in x]  # fmt: skip
            assert failed == [], consoles
            steps.done("DHCP and same-project pings in consoles")

            fip = a.floating_ip(ext, a.port_of(vm0))
            assert fip["fixed_ip_address"] == a_ips[0], fip
            undo.append(lambda: drop_client(cloud.lab))
            outside = external_client(
                cloud.lab, Names(cloud.lab.prefix).bridge(ext), f"10.{octet}.254.{OUTSIDE_HOST}/24"
            )
            address = fip["floating_ip_address"]
            try:
                wait_until(f"ping {address} from outside", lambda: ping(outside, address), 30)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{routers_seen(cloud.lab)}") from None
            steps.done("floating IP reachable")

            servers, networks, volumes = cli.many(
                [["server", "list"], ["network", "list"], ["volume", "list"]]
            )
            assert sorted((s["ID"], s["Name"], s["Status"]) for s in servers) == sorted(
                [(vm0, "vm0", "ACTIVE"), (vm1, "vm1", "ACTIVE")]
            ), servers
            assert {n["ID"] for n in networks} >= {a.net_id, ext}, networks
            assert b.net_id not in {n["ID"] for n in networks}, networks
            assert [(v["ID"], v["Status"]) for v in volumes] == [(a.volume_id, "available")]
            steps.done("openstack CLI lists")

            # Every guest has pinged the other project's live addresses for a while: the
            # volume plugged now ends its loop; none may have answered.
            time.sleep(max(0.0, ISOLATION_S - (time.monotonic() - all_alive)))
            a.attach(vm0)
            b.attach(b0)
            a.console_until(vm0, "e2e: away done", f"e2e: wrote {patterns[0]}", timeout=90)
            b.console_until(b0, "e2e: away done", f"e2e: wrote {patterns[1]}", timeout=90)
            a.detach(vm0)
            b.detach(b0)
            a.attach(vm1)
            a.console_until(vm1, "e2e: away done", f"e2e: read {patterns[0]}", timeout=90)
            a.detach(vm1)
            steps.done("isolation, volume written by vm0 and read by vm1")

            ports = {sid: a.port_of(sid) for sid in a.servers} | {b0: b.port_of(b0)}
            run_all(undo)  # everything goes: servers, volumes, FIP, router, networks
            undo.clear()
            steps.done("deleted all")
        finally:
            print("tenant scenario steps:", steps.times)
            run_all(undo)

        expected_a = {
            **{sid: SERVER_WITH_VOLUME for sid in a.servers},
            **{ports[sid]: PORT_LIFE for sid in a.servers},
            free_port: PORT_LIFE,
            a.volume_id: [*VOLUME_LIFE[:1], *VOLUME_LIFE[1:3] * 2, VOLUME_LIFE[-1]],
        }
        expected_b = {b0: SERVER_WITH_VOLUME, ports[b0]: PORT_LIFE, b.volume_id: VOLUME_LIFE}
        for tap, expected in ((tap_a, expected_a), (tap_b, expected_b)):
            tap.wait_for("every lifecycle event", lambda t=tap, e=expected: lifecycles(t, e) == e)
        assert_events(tap_a, expected_a, cloud.caller.project_id, others=set(expected_b))
        assert_events(tap_b, expected_b, other.caller.project_id, others=set(expected_a))
        assert tap_a.of(free_port) == PORT_LIFE  # the refused boot did not touch it
        steps.done("events")
        print(f"events: {len(tap_a.received)} to the member, {len(tap_b.received)} to the other")
        assert_project_empty(cloud)
        assert_project_empty(other)
    assert_host_clean(cloud.lab)
    steps.done("host clean")
    assert cloud.findings() == {svc: [] for svc in AUDITED}
    steps.done("audit clean")
    print("tenant scenario:", steps.times, "total", steps.total())


def test_a_boot_on_another_projects_network_is_refused_and_makes_nothing(
    cloud: Cloud, flavor: str
) -> None:
    """As Nova: 400 at once, no server made (the image is a public one of the admin's)."""
    undo: list[Callable[[], Any]] = []
    with entered(other_project(cloud, "intruder")) as other:
        try:
            net = call(cloud.member, "POST", "/network/v2.0/networks", 201, json={"network": {}})
            net_id = net["network"]["id"]
            undo.append(lambda: cloud.member.delete(f"/network/v2.0/networks/{net_id}"))
            subnet = {"network_id": net_id, "cidr": "10.76.0.0/24", "ip_version": 4}
            call(cloud.member, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
            image = public_image(cloud, undo)
            networks = [{"uuid": net_id}]
            refuse_boot(Tenant(other, undo), "another project's network", image, flavor, networks)
        finally:
            run_all(undo)
        assert_project_empty(other)
    assert_project_empty(cloud)


def public_image(cloud: Cloud, undo: list[Callable[[], Any]]) -> str:
    """An image every project may boot (no guest runs from it here)."""
    body = {"name": "public", "disk_format": "ami", "container_format": "ami",
            "visibility": "public"}  # fmt: skip
    image = call(cloud.admin, "POST", "/image/v2/images", 201, json=body)
    undo.append(lambda: cloud.admin.delete(f"/image/v2/images/{image['id']}"))
    headers = {"Content-Type": "application/octet-stream"}
    path = f"/image/v2/images/{image['id']}/file"
    call(cloud.admin, "PUT", path, 204, content=b"stackling-tiny", headers=headers)
    return str(image["id"])


def lifecycles(tap: EventTap, expected: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each resource's lifecycle events as the stream brought them, updates aside."""
    return {rid: [t for t in tap.of(rid) if t not in UPDATES] for rid in expected}


def assert_events(
    tap: EventTap, expected: dict[str, list[str]], project: str, others: set[str]
) -> None:
    """In order, each once (by event id), every one the project's, none of ``others``."""
    got = list(tap.received)
    ids = [r.sse_id for r in got]
    assert len(ids) == len(set(ids)), "an event came twice"
    for r in got:
        assert r.sse_id == r.envelope["id"] and r.event == r.envelope["event_type"], r
        assert r.envelope["project_id"] == project, r
        owner = r.envelope["payload"].get("device_owner")
        if r.event.startswith("network.port.") and owner in NO_PROJECT_PORTS:
            assert r.envelope["payload"]["project_id"] == "", r
        else:
            assert r.envelope["payload"]["project_id"] == project, r
        assert r.resource not in others, f"another project's event: {r}"
    assert lifecycles(tap, expected) == expected
    # Nothing else came of the servers: the refused boots made none.
    servers = {r.resource for r in got if r.event.startswith("compute.server.")}
    lives = (SERVER_LIFE, SERVER_WITH_VOLUME)
    assert servers == {rid for rid, life in expected.items() if life in lives}, servers


def refused(reply: httpx.Response, what: str) -> None:
    """400 or 404 with a fault in the OpenStack shape: ``{"badRequest": {message, code}}``."""
    assert reply.status_code in (400, 404), f"{what}: {reply.status_code} {reply.text}"
    ((kind, fault),) = reply.json().items()
    assert kind in ("badRequest", "itemNotFound"), reply.text
    assert fault["code"] == reply.status_code and fault["message"], reply.text


def refuse_boot(
    tenant: Tenant, what: str, image: str, flavor: str, networks: list[dict[str, str]]
) -> None:
    """A boot naming another project's object is refused, and no server is made."""
    body = {"server": {"name": "taken", "imageRef": image, "flavorRef": flavor,
                       "networks": networks}}  # fmt: skip
    reply = tenant.http.post("/compute/v2.1/servers", json=body)
    if reply.status_code == 202:  # made after all: it must still go
        made = [reply.json()["server"]["id"]]
        tenant.undo.append(lambda: delete_servers(tenant.cloud, made))
    refused(reply, f"a boot with {what}")


def test_boot_with_network_api_down_ends_in_error_and_leaks_nothing(
    cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    undo: list[Callable[[], Any]] = []
    try:
        net = call(cloud.member, "POST", "/network/v2.0/networks", 201, json={"network": {}})
        net_id = net["network"]["id"]
        undo.append(lambda: cloud.member.delete(f"/network/v2.0/networks/{net_id}"))
        subnet = {"network_id": net_id, "cidr": "10.77.0.0/24", "ip_version": 4}
        call(cloud.member, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
        servers: list[str] = []
        undo.append(lambda: delete_servers(cloud, servers))
        undo.append(lambda: restart(cloud.stack, "network"))

        cloud.stack.kill("network")
        started = time.monotonic()
        servers.append(boot(cloud, "no-net", tiny_image, flavor, networks=[{"uuid": net_id}]))
        view = wait_until("ERROR", lambda: status(cloud, servers[0], "ERROR"), BUILD_TIMEOUT_S + 30)
        took = time.monotonic() - started
        assert took < BUILD_TIMEOUT_S, took
        assert "network" in view["fault"]["message"], view
        assert view["addresses"] == {}, view
        print(f"boot with network-api down: ERROR after {took:.1f}s: {view['fault']['message']}")
    finally:
        run_all(undo)  # network-api back first, then the server and the network go
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}


def test_ports_made_after_a_boot_gave_up_on_network_api_go_with_the_server(
    cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    undo: list[Callable[[], Any]] = []
    try:
        net = call(cloud.member, "POST", "/network/v2.0/networks", 201, json={"network": {}})
        net_id = net["network"]["id"]
        undo.append(lambda: cloud.member.delete(f"/network/v2.0/networks/{net_id}"))
        subnet = {"network_id": net_id, "cidr": "10.79.0.0/24", "ip_version": 4}
        call(cloud.member, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
        servers: list[str] = []
        undo.append(lambda: delete_servers(cloud, servers))
        undo.append(lambda: cloud.stack.resume("network"))

        cloud.stack.pause("network")  # its queued requests outlive compute's deadline
        servers.append(boot(cloud, "late", tiny_image, flavor, networks=[{"uuid": net_id}]))
        view = wait_until("ERROR", lambda: status(cloud, servers[0], "ERROR"), BUILD_TIMEOUT_S + 30)
        assert "network" in view["fault"]["message"], view
        cloud.stack.resume("network")
        time.sleep(2)  # what it does now, nobody waits for
        late = cloud.member.get("/network/v2.0/ports", params={"device_id": servers[0]})
        print(f"ports made after the boot gave up: {len(late.json()['ports'])}")
    finally:
        run_all(undo)
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}
