"""network-api + network-agent on the real kernel: bind -> ACTIVE -> DHCP and ping, then
an agent restart reconciles a port deleted while it was down.

The agent runs in-process with the Linux drivers under a random name prefix; guests are
network namespaces whose veth host end is the port's tap name (as a hypervisor would
create it, then add it to the bridge the binding returned). Everything with the prefix
is removed at the end, and the test fails if anything is left.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from driver_fixtures import UDHCPC_SCRIPT, need_root_tools
from netapi_helpers import Api, network_api

from common_rpc import Event, RequestContext, RpcClient, use_context
from common_rpc.agents import agents_router
from common_rpc.audit import request_audit
from common_rpc.testing import wait_for
from network_svc.agent.main import NetworkAgent, build
from network_svc.agent.settings import AgentSettings
from network_svc.clients import AgentApi
from network_svc.contracts import NetworkState, PortInfo, PortState
from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.linux.sweep import leftovers, sweep
from network_svc.rpc.handlers import rpc as network_rpc

T = TypeVar("T")
MEMBER = RequestContext(project_id="pA", roles=frozenset({"member"}))


@pytest.fixture(name="host_lab")
def host_lab_fixture() -> Iterator[tuple[str, Path]]:
    """A random prefix and a state dir; afterwards nothing with the prefix may be left."""
    need_root_tools()
    prefix = "y" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3))
    state_dir = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}-"))
    state_dir.chmod(0o755)  # dnsmasq reads its files after dropping root
    try:
        yield prefix, state_dir
    finally:
        sweep(prefix, state_dir)
        left = leftovers(prefix, state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert left == {"links": [], "netns": [], "chains": [], "dnsmasq": []}, left


def _agent(prefix: str, state_dir: Path, api_topic: str) -> NetworkAgent:
    return build(
        AgentSettings(
            host=f"{prefix}-cn1",
            data_dir=state_dir / "agent",
            agent_driver="linux",
            agent_name_prefix=prefix,
            agent_state_dir=state_dir / "dhcp",
            agent_local_ip="127.0.0.1",
            agent_reconcile_interval=3600,
            agent_api_topic=api_topic,
            agent_api_timeout=10,
        )
    )


async def thread(func: Callable[..., T], *args: Any) -> T:
    """pyroute2 and the commands block: never on the event loop's thread."""
    return await asyncio.to_thread(func, *args)


def _plug_guest(prefix: str, n: int, bound: dict[str, Any]) -> str:
    """What the hypervisor does: a device named as the agent expects, on the bridge."""
    ns, dev, tap = f"{prefix}g{n}", f"{prefix}e{n}", bound["device"]
    netlink.ensure_netns(ns)
    netlink.set_link("lo", ns, state="up")
    netlink.ensure_veth(tap, dev, ns)
    netlink.move_to_netns(dev, ns)
    netlink.set_link(dev, ns, address=bound["mac_address"])
    netlink.set_up(dev, ns, mtu=bound["mtu"])
    netlink.disable_ipv6(tap)
    netlink.set_link(tap, master=netlink.index(bound["bridge"]))
    netlink.set_up(tap, mtu=bound["mtu"])
    return ns


def _dhcp(ns: str, dev: str, script: Path) -> str | None:
    out = priv.run(
        priv.in_netns(ns, ["busybox", "udhcpc", "-i", dev, "-f", "-q", "-n",
                           "-t", "4", "-T", "1", "-s", str(script)]),
        timeout=30, check=False,
    )  # fmt: skip
    leases = [line.split()[1] for line in out.splitlines() if line.startswith("lease ")]
    return leases[0] if leases else None


def _ping(ns: str, ip: str) -> bool:
    try:
        priv.run(priv.in_netns(ns, ["busybox", "ping", "-c", "1", "-W", "2", ip]), timeout=10)
    except priv.CommandError:
        return False
    return True


def _chain(ipt_chain: str) -> str:
    return priv.run(["iptables", "-w", "10", "-S", ipt_chain], timeout=15)


async def _ports(api: Api, api_topic: str) -> tuple[str, list[dict[str, Any]], list[Event]]:
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    runtime = api.app.state.runtime
    subscriber = runtime.subscribe(
        f"agtest{uuid.uuid4().hex[:8]}", ["network.port.update.end"], record
    )
    await subscriber.start()
    net = await api.network("pA")
    pool = [{"start": "10.72.0.10", "end": "10.72.0.200"}]
    await api.subnet("pA", net["id"], "10.72.0.0/24", allocation_pools=pool)
    ports = [await api.port("pA", net["id"], device_owner="compute:nova") for _ in range(2)]
    return net["id"], ports, seen


async def test_bind_dhcp_ping_then_reconcile_after_restart(tmp_path, host_lab) -> None:
    prefix, state_dir = host_lab
    script = state_dir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    api_topic = f"nettest-{prefix}-{secrets.token_hex(3)}"  # this test's API replica only
    timings: dict[str, float] = {}
    async with network_api(tmp_path, default_network_type="local") as api:
        runtime = api.app.state.runtime
        api_server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await api_server.start()
        agent = _agent(prefix, state_dir, api_topic)
        await agent.start()
        try:
            # The agent's heartbeat lists it, alive, for admins only.
            async def listed() -> bool:
                resp = await api.get("pA", "/v2.0/agents", "admin")
                hosts = {a["host"]: a for a in resp.json()["agents"]}
                return hosts.get(agent.settings.host, {}).get("alive") is True

            await wait_for(listed, timeout=10)
            # A non-admin lists none, as Neutron's policy filters each agent out.
            mine = await api.get("pA", "/v2.0/agents")
            assert mine.status_code == 200 and mine.json() == {"agents": []}
            net_id, ports, seen = await _ports(api, api_topic)
            client = RpcClient(runtime.broker)
            bound = []
            started = time.monotonic()
            with use_context(MEMBER):
                for port in ports:
                    reply = await client.call(
                        api_topic,
                        "update_port_binding",
                        port_id=port["id"],
                        host=agent.settings.host,
                        timeout=30,
                    )
                    assert reply["status"] == "ACTIVE", reply
                    assert reply["bridge"] == agent.host.names.bridge(net_id)
                    bound.append(reply)
            timings["bind x2"] = time.monotonic() - started

            async def both_active_events() -> bool:
                active = {e.payload["id"] for e in seen if e.payload["status"] == "ACTIVE"}
                return active == {p["id"] for p in ports}

            await wait_for(both_active_events, timeout=10)

            started = time.monotonic()
            guests = [await thread(_plug_guest, prefix, n, b) for n, b in enumerate(bound)]
            ips = [b["fixed_ips"][0]["ip_address"] for b in bound]
            for n, ns in enumerate(guests):
                assert await thread(_dhcp, ns, f"{prefix}e{n}", script) == ips[n]
            assert await thread(_ping, guests[0], ips[1])
            assert await thread(_ping, guests[1], ips[0])
            timings["dhcp+ping"] = time.monotonic() - started

            # The audit finds the host as the DB wants it, then sees what breaks it.
            report = await request_audit(client, api_topic, timeout=30)
            assert report.clean, report.findings
            assert report.checked["bridges"] == 1 and report.checked["port_firewalls"] == 2
            orphan = f"{prefix}brqdeadbeef"
            await thread(functools.partial(netlink.ensure_link, orphan, "bridge"))
            dnsmasq = agent.host.drivers.dhcp
            os.kill((await thread(dnsmasq.running))[net_id], signal.SIGKILL)

            async def dnsmasq_gone() -> bool:
                return net_id not in await thread(dnsmasq.running)

            await wait_for(dnsmasq_gone, timeout=10)
            report = await request_audit(client, api_topic, timeout=30)
            found = {(f.kind, f.resource, f.id) for f in report.findings}
            assert found == {("orphan", "bridge", orphan), ("missing", "dnsmasq", net_id)}

            # The agent goes away; port 1 is deleted meanwhile; a new agent reconciles.
            await agent.stop()
            gone = await api.delete("pA", f"/v2.0/ports/{ports[1]['id']}")
            assert gone.status_code == 204
            started = time.monotonic()
            agent = _agent(prefix, state_dir, api_topic)
            await agent.start()

            async def reconciled() -> bool:
                return agent.reconciler.rounds >= 1

            await wait_for(reconciled, timeout=30)
            timings["restart+reconcile"] = time.monotonic() - started
            names, fw = agent.host.names, agent.host.drivers.firewall
            owned = await thread(fw.list_owned)
            assert names.chain("i", ports[0]["id"]) in owned
            assert names.chain("i", ports[1]["id"]) not in owned
            hosts = (state_dir / "dhcp" / net_id / "hosts").read_text()
            assert bound[0]["mac_address"] in hosts and bound[1]["mac_address"] not in hosts
            links = await thread(netlink.links)
            bridge = links[names.bridge(net_id)]["index"]
            assert links[bound[0]["device"]]["master"] == bridge
            assert not links[bound[1]["device"]]["master"]
            assert await thread(_dhcp, guests[0], f"{prefix}e0", script) == ips[0]

            # A repeated command, and an older one with other rules, change nothing.
            egress = await thread(_chain, names.chain("o", ports[0]["id"]))
            with use_context(MEMBER):
                port_api = AgentApi(client, agent.settings.host, timeout=10)
                current = bound[0]["observed_generation"]
                network = NetworkState(network_id=net_id, mtu=1500, generation=0)
                port = PortInfo(port_id=ports[0]["id"], network_id=net_id,
                                mac="fa:16:3e:ff:ff:ff", port_security=False)  # fmt: skip
                for generation in (current, current - 1):
                    state = PortState(network=network, port=port, generation=generation)
                    reply = await port_api.wire_port(state)
                    assert not reply.applied and reply.observed_generation == current
            assert await thread(_chain, names.chain("o", ports[0]["id"])) == egress
            # The DHCP server holds its port's address, the first of the pool: still reachable.
            dhcp_ports = await api.get("pA", "/v2.0/ports?device_owner=network:dhcp")
            [server] = dhcp_ports.json()["ports"]
            assert server["fixed_ips"][0]["ip_address"] == "10.72.0.10"
            assert await thread(_ping, guests[0], "10.72.0.10")
            # Reconciled: the orphan bridge is gone, dnsmasq is back; nothing to report.
            report = await request_audit(client, api_topic, timeout=30)
            assert report.clean, report.findings
        finally:
            await agent.stop()
            await api_server.stop()
            for n in range(2):
                await thread(netlink.remove_netns, f"{prefix}g{n}")
    print("timings:", {k: round(v, 2) for k, v in timings.items()})
