"""Three simulated hosts on the real kernel: tenant networks span them over VXLAN.

network-api runs in-process (the controller); each host is a network namespace on the
fabric with its own network-agent process (``network_svc.hosts.fabric``), reaching the
broker through the relay. host3 is the network node of project A (its DHCP server and
its router), host2 of project B's DHCP. Guests are namespaces whose tap end sits on their
host's bridge, as a hypervisor on that host would put it. Checked: DHCP from the network
node and pings between hosts, counted as VXLAN on the fabric; project B on the same CIDR
reaches nothing of A; a floating IP reaches the guest on host2 from outside; host2 dies
(SIGKILL, namespace deleted), is reported by the audit, comes back, converges and drops
what it no longer serves; a port wired on the wrong host is a finding. Everything with
the fabric's prefix is removed, even on failure.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from driver_fixtures import UDHCPC_SCRIPT, need_root_tools
from netapi_helpers import Api, network_api
from test_agent_wiring import thread

from common_rpc import RequestContext, RpcClient, use_context
from common_rpc.agents import agents_router
from common_rpc.audit import request_audit
from common_rpc.rpc import queue_name
from common_rpc.testing import wait_for
from network_svc.clients import AgentApi
from network_svc.db.models import Port
from network_svc.domain import desired
from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.linux.sweep import leftovers, sweep
from network_svc.hosts.fabric import Fabric, FabricConfig, SimHost
from network_svc.rpc.handlers import rpc as network_rpc

ADMIN = RequestContext(project_id="admin", roles=frozenset({"admin"}))


@pytest.fixture(name="fabric")
def fabric_fixture(tmp_path: Path) -> Iterator[Fabric]:
    need_root_tools()
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter is not installed")
    prefix = "w" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(2))
    state_dir = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}-"))
    state_dir.chmod(0o755)
    octet = random.randint(10, 250)
    config = FabricConfig(
        prefix=prefix,
        underlay=f"198.19.{octet}.0/24",
        external=f"10.{octet}.250.0/24",
        host_name=f"{prefix}-host{{i}}",
        state_dir=state_dir / "hosts",
    )
    fabric = Fabric(config)
    try:
        yield fabric
    finally:
        try:
            fabric.down()
        finally:
            for log in (state_dir / "hosts").glob("*/*.log"):  # kept with pytest's tmp_path
                shutil.copy(log, tmp_path / f"{log.parent.name}-{log.name}")
            sweep(prefix, state_dir)
            left = leftovers(prefix, state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
        assert left == {"links": [], "netns": [], "chains": [], "dnsmasq": []}, left


def _plug_guest(fabric: Fabric, host: SimHost, name: str, bound: dict[str, Any]) -> str:
    """What a hypervisor on ``host`` does: the port's tap on the host's bridge; the guest
    is a namespace holding the other end."""
    ns, dev, tap = (
        f"{fabric.config.prefix}{name}",
        f"{fabric.config.prefix}{name}e",
        bound["device"],
    )
    netlink.remove_netns(ns)  # a guest of a host that died: made again
    netlink.ensure_netns(ns)
    netlink.set_link("lo", ns, state="up")
    netlink.ensure_link(tap, "veth", peer=dev)
    netlink.move_to_netns(dev, ns)
    netlink.move_to_netns(tap, host.netns)
    netlink.set_link(dev, ns, address=bound["mac_address"])
    netlink.set_up(dev, ns, mtu=bound["mtu"])
    netlink.set_link(tap, host.netns, master=netlink.index(bound["bridge"], host.netns))
    netlink.set_up(tap, host.netns, mtu=bound["mtu"])
    return ns


def _sh(ns: str, *argv: str, check: bool = True) -> str:
    return priv.run(priv.in_netns(ns, argv), timeout=30, check=check)


def _dhcp(ns: str, script: Path) -> str | None:
    dev = ns + "e"
    out = _sh(ns, "busybox", "udhcpc", "-i", dev, "-f", "-q", "-n", "-t", "5", "-T", "1",
              "-s", str(script), check=False)  # fmt: skip
    leases = [line.split() for line in out.splitlines() if line.startswith("lease ")]
    if not leases:
        return None
    ip, _mask, router = leases[0][1:4]
    if router:
        _sh(ns, "ip", "route", "replace", "default", "via", router)
    return ip


def _ping(ns: str, ip: str) -> bool:
    out = _sh(ns, "busybox", "ping", "-c", "1", "-W", "2", ip, check=False)
    return " bytes from " in out


async def _eventually_pings(ns: str, ip: str, timeout: float = 20) -> None:
    async def answered() -> bool:
        return await thread(_ping, ns, ip)

    await wait_for(answered, timeout=timeout)


def _neighbour(ns: str, ip: str) -> str:
    for line in _sh(ns, "ip", "-4", "neigh", "show", ip).splitlines():
        if "lladdr" in line:
            return line.split("lladdr")[1].split()[0]
    return ""


async def _bind(client: RpcClient, topic: str, port: dict[str, Any], host: str) -> Any:
    with use_context(ADMIN):
        reply = await client.call(
            topic, "update_port_binding", port_id=port["id"], host=host, timeout=30
        )
    assert reply["status"] == "ACTIVE", reply
    return reply


def _agent_env(api_topic: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETWORK_", "STACKLING_"))}
    env.update(
        NETWORK_AGENT_API_TOPIC=api_topic,
        NETWORK_AGENT_DRIVER="linux",
        NETWORK_AGENT_HEARTBEAT_INTERVAL="2",
        NETWORK_AGENT_RECONCILE_INTERVAL="3600",
        NETWORK_AGENT_API_TIMEOUT="20",
        STACKLING_LOG_LEVEL="INFO",
    )
    return env


async def _project(api: Api, project: str, ext: str | None, cidr: str) -> dict[str, Any]:
    net = await api.network(project)
    pool = [{"start": cidr.replace("0/24", "10"), "end": cidr.replace("0/24", "100")}]
    sub = await api.subnet(project, net["id"], cidr, allocation_pools=pool)
    groups = (await api.get(project, "/v2.0/security-groups?name=default")).json()
    if not groups["security_groups"]:
        await api.port(project, net["id"], name="tmp")  # the default group comes on first use
        groups = (await api.get(project, "/v2.0/security-groups?name=default")).json()
    rule = {
        "security_group_id": groups["security_groups"][0]["id"],
        "direction": "ingress",
        "protocol": "icmp",
        "remote_ip_prefix": "0.0.0.0/0",
    }
    made = await api.post(project, "/v2.0/security-group-rules", {"security_group_rule": rule})
    assert made.status_code == 201, made.text
    out: dict[str, Any] = {"net": net, "subnet": sub}
    if ext:
        body = {"router": {"name": "r", "external_gateway_info": {"network_id": ext}}}
        out["router"] = (await api.post(project, "/v2.0/routers", body)).json()["router"]
        path = f"/v2.0/routers/{out['router']['id']}/add_router_interface"
        added = await api.put(project, path, {"subnet_id": sub["id"]})
        assert added.status_code == 200, added.text
    return out


async def test_three_hosts_vxlan_dhcp_floating_ip_and_a_host_failure(tmp_path, fabric) -> None:
    config = fabric.config
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    api_topic = f"nettest-{config.prefix}-{secrets.token_hex(3)}"
    hosts = [config.host(i) for i in (1, 2, 3)]
    names = [h.name for h in hosts]
    timings: dict[str, float] = {}
    guests: dict[str, str] = {}
    started = time.monotonic()
    settings = {
        "default_network_type": "vxlan",
        "network_nodes": [names[2], names[1]],  # A's DHCP on host3, then B's on host2
        "l3_host": names[2],  # every router on host3
        "agent_down_s": 10.0,  # 5 heartbeats: a loaded machine delays some
    }
    async with network_api(tmp_path, **settings) as api:
        runtime = api.app.state.runtime
        server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await server.start()
        client = RpcClient(runtime.broker)
        procs: dict[int, subprocess.Popen[bytes]] = {}
        try:
            await thread(fabric.up)
            await thread(fabric.start_relay)
            for host in hosts:
                await thread(fabric.host_up, host.index)
                procs[host.index] = fabric.start_agent(host, "network-agent", _agent_env(api_topic))

            async def all_alive() -> bool:
                resp = await api.get("admin", "/v2.0/agents", "admin")
                alive = {a["host"]: a for a in resp.json()["agents"] if a["alive"]}
                return all(
                    alive.get(h.name, {}).get("configurations", {}).get("tunneling_ip")
                    == h.underlay_ip
                    for h in hosts
                )

            await wait_for(all_alive, timeout=60)
            timings["3 hosts up"] = time.monotonic() - started

            # The provider network: flat on physnet1 (each host's ext0), the outside at .1.
            ext_body = {
                "network": {
                    "name": "ext",
                    "router:external": True,
                    "provider:network_type": "flat",
                    "provider:physical_network": "physnet1",
                }
            }
            ext = (await api.post("admin", "/v2.0/networks", ext_body, "admin")).json()["network"]
            base = config.external.rsplit(".", 1)[0]
            await api.subnet(
                "admin", ext["id"], config.external, gateway_ip=config.outside_ip,
                allocation_pools=[{"start": f"{base}.10", "end": f"{base}.50"}],
                enable_dhcp=False,
            )  # fmt: skip
            a = await _project(api, "pA", ext["id"], "10.61.0.0/24")
            b = await _project(api, "pB", None, "10.61.0.0/24")
            assert a["router"]["id"]
            dhcp_hosts = {}
            for project, lab in (("pA", a), ("pB", b)):
                query = f"device_owner=network:dhcp&network_id={lab['net']['id']}"
                listed = await api.get(project, f"/v2.0/ports?{query}", "admin")
                [dhcp_port] = listed.json()["ports"]
                dhcp_hosts[project] = dhcp_port["binding:host_id"]
            assert dhcp_hosts == {"pA": names[2], "pB": names[1]}

            # Ports of A on host1 and host2, of B on host1 and host2: wired, then plugged.
            started = time.monotonic()
            bound: dict[str, Any] = {}
            for key, lab, project, host in (
                ("a1", a, "pA", hosts[0]),
                ("a2", a, "pA", hosts[1]),
                ("b1", b, "pB", hosts[0]),
                ("b2", b, "pB", hosts[1]),
            ):
                same = {}
                if project == "pB":  # A's addresses, on the same CIDR
                    address = bound["a" + key[1]]["fixed_ips"][0]["ip_address"]
                    same = {"fixed_ips": [{"ip_address": address}]}
                port = await api.port(
                    project, lab["net"]["id"], device_owner="compute:nova", **same
                )
                bound[key] = await _bind(client, api_topic, port, host.name)
                guests[key] = await thread(_plug_guest, fabric, host, key, bound[key])
            timings["4 ports bound+plugged"] = time.monotonic() - started
            ips = {k: v["fixed_ips"][0]["ip_address"] for k, v in bound.items()}

            # DHCP from the network node, across the tunnels.
            started = time.monotonic()
            for key in ("a1", "a2", "b1", "b2"):
                assert await thread(_dhcp, guests[key], script) == ips[key], key
            timings["4 DHCP leases"] = time.monotonic() - started

            # host1 <-> host2 in A, counted as VXLAN on the fabric.
            before = await thread(fabric.vxlan_packets)
            assert await thread(_ping, guests["a1"], ips["a2"])
            assert await thread(_ping, guests["a2"], ips["a1"])
            after = await thread(fabric.vxlan_packets)
            assert after[1] - before.get(1, 0) >= 2 and after[2] - before.get(2, 0) >= 2, after

            # l2-population: host3 serves A only; host1 has an entry per peer of A.
            links3 = await thread(netlink.links, hosts[2].netns)
            vni_a, vni_b = [
                (await api.get("admin", f"/v2.0/networks/{x['net']['id']}", "admin")).json()[
                    "network"
                ]["provider:segmentation_id"]
                for x in (a, b)
            ]
            assert f"{hosts[2].prefix}vxlan-{vni_a}" in links3
            assert f"{hosts[2].prefix}vxlan-{vni_b}" not in links3
            inventory = await AgentApi(client, names[0], timeout=10).inventory()
            entries = inventory.tunnels[f"{hosts[0].prefix}vxlan-{vni_a}"]
            assert f"00:00:00:00:00:00 {hosts[1].underlay_ip}" in entries
            assert f"00:00:00:00:00:00 {hosts[2].underlay_ip}" in entries
            assert f"{bound['a2']['mac_address']} {hosts[1].underlay_ip}" in entries
            assert f"arp {ips['a2']} {bound['a2']['mac_address']}" in entries

            # B on the same CIDR: its own ports only, nothing of A.
            assert ips["b2"] == ips["a2"] and ips["b1"] == ips["a1"]
            assert await thread(_ping, guests["b1"], ips["b2"])
            assert await thread(_neighbour, guests["b1"], ips["b2"]) == bound["b2"]["mac_address"]
            assert not await thread(_ping, guests["b1"], "10.61.0.1")  # A's router

            # SNAT from host1 and a floating IP on host2, both through the router on host3.
            started = time.monotonic()
            assert await thread(_ping, guests["a1"], config.outside_ip)
            body = {"floatingip": {"floating_network_id": ext["id"], "port_id": bound["a2"]["id"]}}
            fip = (await api.post("pA", "/v2.0/floatingips", body)).json()["floatingip"]
            await _eventually_pings(config.outside, fip["floating_ip_address"])
            timings["snat+fip"] = time.monotonic() - started
            report = await request_audit(client, api_topic, timeout=60)
            assert report.clean, report.findings

            # A port bound to host2 wired on host1 too: a finding, until host1 lets it go.
            async with api.app.state.deps.sessions() as session:
                port_row = await session.get(Port, bound["a2"]["id"])
                state = await desired.port_state(session, port_row)
            with use_context(ADMIN):
                await AgentApi(client, names[0], timeout=20).wire_port(state)
            report = await request_audit(client, api_topic, timeout=60)
            found = {(f.kind, f.resource, f.id, f.host) for f in report.findings}
            assert ("mismatch", "port", bound["a2"]["id"], names[0]) in found, report.findings
            with use_context(ADMIN):
                await AgentApi(client, names[0], timeout=20).unwire_port(bound["a2"]["id"])

            # host2 dies: its agent and everything in its namespaces killed, namespace gone.
            before_kill = await thread(netlink.list_netns)
            assert f"{hosts[1].prefix}qdhcp-{b['net']['id']}" in before_kill
            killed = await thread(fabric.kill_host, 2)
            assert procs[2].pid in killed
            procs[2].wait(timeout=10)
            started = time.monotonic()

            async def host2_down() -> bool:
                resp = await api.get("admin", "/v2.0/agents", "admin")
                return any(x["host"] == names[1] and not x["alive"] for x in resp.json()["agents"])

            await wait_for(host2_down, timeout=30)

            async def host2_gone_from_the_broker() -> bool:
                # the relay ended the dead agent's connection: what it held is queued again
                channel = await runtime.broker.channel(runtime.broker.config.url)
                try:
                    queue = await channel.declare_queue(
                        queue_name(f"network.{names[1]}"), passive=True
                    )
                    return queue.declaration_result.consumer_count == 0
                finally:
                    await channel.close()

            await wait_for(host2_gone_from_the_broker, timeout=30)
            report = await request_audit(client, api_topic, timeout=60)
            found = {(f.kind, f.resource, f.id) for f in report.findings}
            assert ("unreachable", "host", names[1]) in found
            assert ("unreachable", "dhcp_server", b["net"]["id"]) in found, report.findings
            assert all(f.host == names[1] for f in report.findings), report.findings
            # host1 and host3 go on: A's guest on host1 still reaches the network node.
            assert await thread(_ping, guests["a1"], "10.61.0.1")
            # Meanwhile project B goes away: host2 is not there to hear it.
            for key in ("b1", "b2"):
                gone = await api.delete("pB", f"/v2.0/ports/{bound[key]['id']}")
                assert gone.status_code == 204
            assert (await api.delete("pB", f"/v2.0/networks/{b['net']['id']}")).status_code == 204

            # host2 comes back: it rebuilds A's port and removes B's DHCP namespace.
            await thread(fabric.host_up, 2)
            procs[2] = fabric.start_agent(hosts[1], "network-agent", _agent_env(api_topic))

            async def host2_converged() -> bool:
                left = f"{hosts[1].prefix}qdhcp-{b['net']['id']}"
                if left in await thread(netlink.list_netns):
                    return False
                links = await thread(netlink.links, hosts[1].netns)
                return f"{hosts[1].prefix}vxlan-{vni_a}" in links

            await wait_for(host2_converged, timeout=60)
            timings["host2 back+converged"] = time.monotonic() - started
            guests["a2"] = await thread(_plug_guest, fabric, hosts[1], "a2", bound["a2"])
            assert await thread(_dhcp, guests["a2"], script) == ips["a2"]
            await _eventually_pings(guests["a1"], ips["a2"])
            await _eventually_pings(config.outside, fip["floating_ip_address"])
            report = await request_audit(client, api_topic, timeout=60)
            assert report.clean, report.findings
        finally:
            await server.stop()
            for ns in guests.values():
                await thread(netlink.remove_netns, ns)
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            await asyncio.sleep(0)
    print("timings:", {k: round(v, 2) for k, v in timings.items()})


DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices>
<interface type='bridge'><source bridge='{bridge}'/><target dev='{tap}'/><model type='virtio'/>
</interface></devices></domain>"""


def test_a_hosts_libvirtd_puts_guest_taps_on_its_bridges(fabric) -> None:
    """The compute side's way in: each host runs its own libvirtd, so the unchanged
    ``<interface type='bridge'>`` of a domain makes its tap in the host's namespace, on
    the bridge the network-agent made there; a host failure takes its QEMU with it."""
    for tool in ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    fabric.up()
    host = fabric.host_up(1)
    uri = fabric.start_libvirt(host)
    bridge, tap = f"{host.prefix}brqtest", f"{host.prefix}taptest"
    netlink.ensure_link(bridge, "bridge", host.netns)
    netlink.set_up(bridge, host.netns)
    xml = Path(fabric.config.state_dir) / "domain.xml"
    xml.write_text(DOMAIN.format(name=f"{fabric.config.prefix}-guest", bridge=bridge, tap=tap))
    priv.run(["virsh", "-c", uri, "create", str(xml), "--paused"], timeout=60)
    links = netlink.links(host.netns)
    assert links[tap]["master"] == links[bridge]["index"]
    assert tap not in netlink.links()  # not in the root namespace: the host's alone
    # The machine's libvirtd does not see the host's guest.
    machine = priv.run(["virsh", "-c", "qemu:///system", "list", "--name"], timeout=30, check=False)
    assert f"{fabric.config.prefix}-guest" not in machine
    qemu = [
        pid
        for pid in fabric.pids(1)
        if "qemu" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]
    assert qemu, "the guest's QEMU runs in the host's namespace"
    killed = fabric.kill_host(1)
    assert set(qemu) <= set(killed)
