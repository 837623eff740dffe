"""Real servers through the gateway: QEMU guests on a network the network-agent wires.

One stack for the module: the gateway, the four APIs and the network, compute and volume
agents (libvirt ``qemu:///system``, TCG; tgt), on a RabbitMQ virtual host of their own,
every host object under one random prefix (``HostLab``). As a member of a fresh project:

- two stackling-tiny servers on one network (each with a fixed address), behind a router
  with an external gateway, ping each other and the router; each console, fetched through
  the API, shows its DHCP address and both pings. A floating IP reaches one of them from
  a namespace on the external network. Deleting everything leaves every service's list
  empty for the project, nothing with the prefix on the host, and ``audit`` of every
  service clean.
- a volume hot-plugged into one server gets a pattern its guest writes; detached and
  attached to a second server, that guest reads the pattern back.
- with network-api stopped, a boot ends in ERROR with a fault within the build timeout;
  once network-api is back, the server deletes and nothing is leaked (audit clean).
- with network-api frozen past compute's deadline, then thawed, the ports it makes for
  requests nobody waits for any more go with the server's delete.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

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
    console_has,
    default_group,
    delete_servers,
    delete_volume,
    drop_client,
    external_client,
    flavor_of,
    ping,
    restart,
    run_all,
    start_cloud,
    status,
    tiny_image_of,
    user_data,
    volume_status,
    volume_user_data,
    wait_until,
)

from network_svc.drivers.names import Names


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    yield from start_cloud(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_image(cloud: Cloud) -> Iterator[str]:
    yield from tiny_image_of(cloud)


@pytest.fixture(scope="module")
def flavor(cloud: Cloud) -> Iterator[str]:
    yield from flavor_of(cloud)


def test_two_servers_take_dhcp_ping_each_other_and_the_router_reach_a_floating_ip_leave_nothing(
    cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    octet = 100 + secrets.randbelow(100)
    cidr, ext_cidr = f"10.{octet}.1.0/24", f"10.{octet}.254.0/24"
    gateway_ip = f"10.{octet}.1.1"
    ips = (f"10.{octet}.1.21", f"10.{octet}.1.22")
    conn = cloud.sdk()
    undo: list[Callable[[], Any]] = []  # run last to first, also when the test failed
    try:
        ext_net = call(
            cloud.admin,
            "POST",
            "/network/v2.0/networks",
            201,
            json={"network": {"name": f"ext-{cloud.lab.prefix}", "router:external": True}},
        )["network"]
        undo.append(lambda: cloud.admin.delete(f"/network/v2.0/networks/{ext_net['id']}"))
        call(
            cloud.admin,
            "POST",
            "/network/v2.0/subnets",
            201,
            json={"subnet": {"network_id": ext_net["id"], "cidr": ext_cidr, "ip_version": 4}},
        )
        net = conn.network.create_network(name="e2e-net")
        undo.append(lambda: conn.network.delete_network(net, ignore_missing=True))
        subnet = conn.network.create_subnet(
            network_id=net.id,
            cidr=cidr,
            ip_version=4,
            gateway_ip=gateway_ip,
            allocation_pools=[{"start": f"10.{octet}.1.100", "end": f"10.{octet}.1.200"}],
        )
        router = conn.network.create_router(
            name="e2e-router", external_gateway_info={"network_id": ext_net["id"]}
        )
        undo.append(lambda: conn.network.delete_router(router, ignore_missing=True))
        conn.network.add_interface_to_router(router, subnet=subnet.id)
        undo.append(lambda: conn.network.remove_interface_from_router(router, subnet=subnet.id))
        timings["network"] = time.monotonic() - started

        servers: list[str] = []
        undo.append(lambda: delete_servers(cloud, servers))
        for index, (ip, peer) in enumerate(zip(ips, reversed(ips), strict=True)):
            servers.append(
                boot(
                    cloud,
                    f"vm{index}",
                    tiny_image,
                    flavor,
                    networks=[{"uuid": net.id, "fixed_ip": ip}],
                    user_data=user_data(peer, gateway_ip),
                )
            )
        booted = time.monotonic()
        views = [
            wait_until(f"{sid} ACTIVE", lambda sid=sid: status(cloud, sid, "ACTIVE"), 120)
            for sid in servers
        ]
        timings["boot->ACTIVE"] = time.monotonic() - booted
        for view, ip in zip(views, ips, strict=True):
            assert [a["addr"] for a in view["addresses"]["e2e-net"]] == [ip], view

        def pinged(sid: str) -> str | None:
            out = cloud.console(sid)
            return out if out.count("e2e: ping ") >= 2 else None

        outputs = [
            wait_until(f"{sid} pings", lambda sid=sid: pinged(sid), GUEST_TIMEOUT_S, every=3)
            for sid in servers
        ]
        timings["boot->pings done"] = time.monotonic() - booted
        for out, ip, peer in zip(outputs, ips, reversed(ips), strict=True):
            assert f"stackling-guest: ip {ip}/24" in out, out
            assert f"e2e: ping {peer} ok" in out, out
            assert f"e2e: ping {gateway_ip} ok" in out, out

        # A floating IP on the external network reaches server 0 from a namespace there.
        conn.network.create_security_group_rule(
            security_group_id=default_group(conn).id,
            direction="ingress",
            ethertype="IPv4",
            protocol="icmp",
        )
        port = next(conn.network.ports(device_id=servers[0]))
        fip = conn.network.create_ip(floating_network_id=ext_net["id"], port_id=port.id)
        undo.append(lambda: conn.network.delete_ip(fip, ignore_missing=True))
        assert fip.fixed_ip_address == ips[0], fip
        outside = f"10.{octet}.254.250/24"
        undo.append(lambda: drop_client(cloud.lab))
        client = external_client(cloud.lab, Names(cloud.lab.prefix).bridge(ext_net["id"]), outside)
        floating = time.monotonic()
        address = fip.floating_ip_address
        wait_until(f"ping {address} from outside", lambda: ping(client, address), 30)
        timings["floating IP reachable"] = time.monotonic() - floating

        deleting = time.monotonic()
        conn.network.delete_ip(fip)
        for sid in servers:
            conn.compute.delete_server(sid)
        delete_servers(cloud, servers)
        timings["servers deleted"] = time.monotonic() - deleting
    finally:
        try:
            run_all(undo)
        finally:
            conn.close()

    timings["cleaned up"] = time.monotonic() - started
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    timings["host clean"] = time.monotonic() - started
    assert cloud.findings() == {svc: [] for svc in AUDITED}
    timings["total"] = time.monotonic() - started
    print("timings:", {k: round(v, 1) for k, v in timings.items()})


def test_a_volume_written_by_one_server_is_read_back_by_another(
    cloud: Cloud, tiny_image: str, flavor: str
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    pattern = f"stackling-{secrets.token_hex(8)}"
    volumes = f"/volume/v3/{cloud.caller.project_id}/volumes"
    undo: list[Callable[[], Any]] = []
    try:
        net = call(cloud.member, "POST", "/network/v2.0/networks", 201, json={"network": {}})
        net_id = net["network"]["id"]
        undo.append(lambda: cloud.member.delete(f"/network/v2.0/networks/{net_id}"))
        subnet = {"network_id": net_id, "cidr": "10.78.0.0/24", "ip_version": 4}
        call(cloud.member, "POST", "/network/v2.0/subnets", 201, json={"subnet": subnet})
        volume = call(cloud.member, "POST", volumes, 202, json={"volume": {"size": 1}})
        volume_id = volume["volume"]["id"]
        undo.append(lambda: delete_volume(cloud, volume_id))
        servers: list[str] = []
        undo.append(lambda: delete_servers(cloud, servers))
        for index in range(2):
            servers.append(
                boot(
                    cloud,
                    f"vol{index}",
                    tiny_image,
                    flavor,
                    networks=[{"uuid": net_id}],
                    user_data=volume_user_data(pattern),
                )
            )
        for sid in servers:
            wait_until(f"{sid} ACTIVE", lambda sid=sid: status(cloud, sid, "ACTIVE"), 120)
        wait_until("volume available", lambda: volume_status(cloud, volume_id, "available"), 60)

        for sid, verb in zip(servers, ("wrote", "read"), strict=True):
            attachments = f"/compute/v2.1/servers/{sid}/os-volume_attachments"
            began = time.monotonic()
            body = {"volumeAttachment": {"volumeId": volume_id}}
            call(cloud.member, "POST", attachments, 200, json=body)
            assert volume_status(cloud, volume_id, "in-use")
            wait_until(
                f"{sid} {verb}",
                lambda sid=sid, verb=verb: console_has(cloud, sid, f"e2e: {verb} {pattern}"),
                GUEST_TIMEOUT_S,
                every=3,
            )
            timings[f"attach->{verb}"] = time.monotonic() - began
            call(cloud.member, "DELETE", f"{attachments}/{volume_id}", 202)
            wait_until("volume detached", lambda: volume_status(cloud, volume_id, "available"), 60)
        delete_servers(cloud, servers)
        delete_volume(cloud, volume_id)
    finally:
        run_all(undo)
    assert_project_empty(cloud)
    assert_host_clean(cloud.lab)
    assert cloud.findings() == {svc: [] for svc in AUDITED}
    timings["total"] = time.monotonic() - started
    print("volume timings:", {k: round(v, 1) for k, v in timings.items()})


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
