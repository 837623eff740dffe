"""Routers on the real kernel, API to data plane: routing between two subnets, SNAT to an
external network, a floating IP reachable from outside (and from its target's own
subnet: hairpin NAT) until it is disassociated; static routes (extraroute) in the
router's namespace.

network-api and network-agent (Linux drivers, random name prefix) run in-process; the
API places routers on the agent's host (``l3_host``). Guests are namespaces plugged as
bound ports, the "outside" is a namespace on the external network's bridge with no route
to the tenant subnets. Everything with the prefix is removed, even on failure.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from netapi_helpers import Api, network_api
from test_agent_routers_linux import kernel_routes
from test_agent_wiring import MEMBER, _agent, _ping, _plug_guest, host_lab_fixture, thread

from common_rpc import RpcClient, use_context
from common_rpc.agents import agents_router
from common_rpc.audit import request_audit
from common_rpc.testing import wait_for
from network_svc.drivers.linux import netlink, priv
from network_svc.rpc.handlers import rpc as network_rpc

__all__ = ["host_lab_fixture"]  # the fixture is used by name

OUTSIDE_IP = "10.83.0.200"


def _sh(ns: str, *argv: str) -> str:
    return priv.run(priv.in_netns(ns, argv), timeout=15)


def _answered_by(ns: str, ip: str) -> str | None:
    """Who answered a ping to ``ip`` (busybox ping takes a reply from any source)."""
    out = priv.run(
        priv.in_netns(ns, ["busybox", "ping", "-c", "1", "-W", "2", ip]), timeout=10, check=False
    )
    found = [x.split()[3].rstrip(":") for x in out.splitlines() if " bytes from " in x]
    return found[0] if found else None


def _route_guest(ns: str, dev: str, cidr: str, gateway: str) -> None:
    _sh(ns, "ip", "addr", "replace", cidr, "dev", dev)
    _sh(ns, "ip", "route", "replace", "default", "via", gateway)


def _outside(prefix: str, bridge: str) -> str:
    """A host on the external network that knows no route to the tenant subnets."""
    ns, host_end, dev = f"{prefix}x0", f"{prefix}xh", f"{prefix}xe"
    netlink.ensure_netns(ns)
    netlink.set_link("lo", ns, state="up")
    netlink.ensure_veth(host_end, dev, ns)
    netlink.move_to_netns(dev, ns)
    netlink.set_up(dev, ns)
    netlink.ensure_addresses(dev, [f"{OUTSIDE_IP}/24"], ns)
    netlink.disable_ipv6(host_end)
    netlink.set_link(host_end, master=netlink.index(bridge))
    netlink.set_up(host_end)
    return ns


async def _eventually(check: Any, *args: Any, want: bool = True, timeout: float = 15) -> None:
    async def done() -> bool:
        return await thread(check, *args) is want

    await wait_for(done, timeout=timeout)


async def _setup(api: Api) -> dict[str, Any]:
    ext = await api.post(
        "admin", "/v2.0/networks", {"network": {"name": "ext", "router:external": True}}, "admin"
    )
    ext_id = ext.json()["network"]["id"]
    pool = [{"start": "10.83.0.10", "end": "10.83.0.50"}]
    await api.subnet("admin", ext_id, "10.83.0.0/24", allocation_pools=pool, enable_dhcp=False)
    nets, subs = [], []
    for n in (1, 2):
        net = await api.network("pA")
        pool = [{"start": f"10.8{n}.0.10", "end": f"10.8{n}.0.50"}]
        subs.append(await api.subnet("pA", net["id"], f"10.8{n}.0.0/24", allocation_pools=pool))
        nets.append(net["id"])
    groups = (await api.get("pA", "/v2.0/security-groups?name=default")).json()
    if not groups["security_groups"]:
        await api.port("pA", nets[0], name="tmp")  # the default group appears on first use
        groups = (await api.get("pA", "/v2.0/security-groups?name=default")).json()
    rule = {
        "security_group_id": groups["security_groups"][0]["id"],
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "icmp",
        "remote_ip_prefix": "0.0.0.0/0",
    }
    created = await api.post("pA", "/v2.0/security-group-rules", {"security_group_rule": rule})
    assert created.status_code == 201, created.text
    body = {"router": {"name": "r", "external_gateway_info": {"network_id": ext_id}}}
    router = (await api.post("pA", "/v2.0/routers", body)).json()["router"]
    for sub in subs:
        added = await api.put(
            "pA", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}
        )
        assert added.status_code == 200, added.text
    ports = [await api.port("pA", net, device_owner="compute:nova") for net in nets]
    return {"ext": ext_id, "nets": nets, "subnets": subs, "router": router, "ports": ports}


async def test_router_routes_snats_and_floats(tmp_path, host_lab) -> None:
    prefix, state_dir = host_lab
    api_topic = f"nettest-{prefix}-{secrets.token_hex(3)}"
    host = f"{prefix}-cn1"
    timings: dict[str, float] = {}
    guests: list[str] = []
    # The agent does one thing at a time (router syncs, DHCP, then the wiring): on a host
    # shared with other suites a bind may wait longer than the default 8 s deadline, and
    # a port whose wiring missed it stays DOWN. The deadline is the operator's knob;
    # this test is about routing, so it gives the agent time.
    settings = {"default_network_type": "local", "l3_host": host, "agent_rpc_timeout_s": 40}
    async with network_api(tmp_path, **settings) as api:
        runtime = api.app.state.runtime
        api_server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await api_server.start()
        agent = _agent(prefix, state_dir, api_topic)
        await agent.start()
        try:
            started = time.monotonic()
            lab = await _setup(api)
            router_id, names = lab["router"]["id"], agent.host.names
            client = RpcClient(runtime.broker)
            bound, took = [], []
            with use_context(MEMBER):
                for p in lab["ports"]:
                    begun = time.monotonic()
                    bound.append(
                        await client.call(
                            api_topic, "update_port_binding", port_id=p["id"], host=host,
                            timeout=60,
                        )
                    )  # fmt: skip
                    took.append(round(time.monotonic() - begun, 2))
            why = [
                (b["status"], b.get("binding:error"), t) for b, t in zip(bound, took, strict=True)
            ]
            assert [b["status"] for b in bound] == ["ACTIVE", "ACTIVE"], why
            for n, b in enumerate(bound):
                guests.append(await thread(_plug_guest, prefix, n, b))
                ip = b["fixed_ips"][0]["ip_address"]
                await thread(
                    _route_guest, guests[n], f"{prefix}e{n}", f"{ip}/24", f"10.8{n + 1}.0.1"
                )
            ips = [b["fixed_ips"][0]["ip_address"] for b in bound]
            timings["setup+bind"] = time.monotonic() - started

            # Routing: each guest reaches the other subnet through the router's legs.
            started = time.monotonic()
            await _eventually(_ping, guests[0], ips[1])
            assert await thread(_ping, guests[1], ips[0])
            namespace = names.router_namespace(router_id)
            assert namespace in await thread(netlink.list_netns)
            timings["route"] = time.monotonic() - started

            # SNAT: the outside answers a guest it has no route to: it saw the gateway IP.
            outside = await thread(_outside, prefix, names.bridge(lab["ext"]))
            gateway_ip = lab["router"]["external_gateway_info"]["external_fixed_ips"][0]
            assert await thread(_ping, guests[0], OUTSIDE_IP)
            neighbours = await thread(_sh, outside, "ip", "-4", "neigh", "show")
            assert gateway_ip["ip_address"] in neighbours
            assert ips[0] not in neighbours and "10.81." not in neighbours

            # A floating IP: the outside reaches guest 1 at it, until it is disassociated.
            started = time.monotonic()
            body = {"floatingip": {"floating_network_id": lab["ext"], "port_id": bound[1]["id"]}}
            created = await api.post("pA", "/v2.0/floatingips", body)
            assert created.status_code == 201, created.text
            fip = created.json()["floatingip"]
            assert fip["router_id"] == router_id and fip["fixed_ip_address"] == ips[1]
            await _eventually(_ping, outside, fip["floating_ip_address"])
            timings["fip reachable"] = time.monotonic() - started
            # Hairpin: a guest on the target's own subnet reaches it at its floating IP too.
            neighbour = await api.port("pA", lab["nets"][1], device_owner="compute:nova")
            with use_context(MEMBER):
                bound.append(
                    await client.call(
                        api_topic, "update_port_binding", port_id=neighbour["id"], host=host,
                        timeout=60,
                    )
                )  # fmt: skip
            guests.append(await thread(_plug_guest, prefix, 2, bound[2]))
            ip2 = bound[2]["fixed_ips"][0]["ip_address"]
            await thread(_route_guest, guests[2], f"{prefix}e2", f"{ip2}/24", "10.82.0.1")
            assert await thread(_ping, guests[2], ips[1])  # control: plain L2 works
            # without hairpin NAT the target answers directly, from its fixed IP
            public = fip["floating_ip_address"]
            assert await thread(_answered_by, guests[2], public) == public
            assert await thread(_answered_by, guests[0], public) == public  # other subnet
            report = await request_audit(client, api_topic, timeout=30)
            assert report.clean and report.checked["routers"] == 1, report
            started = time.monotonic()
            freed = await api.put(
                "pA", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}}
            )
            assert freed.status_code == 200
            await _eventually(_ping, outside, fip["floating_ip_address"], want=False)
            timings["fip gone"] = time.monotonic() - started
            assert await thread(_ping, guests[0], ips[1])  # routing itself is untouched

            # The host loses the router and gains a stray one while the agent is down: a
            # restarted agent's reconcile rebuilds the first and removes the second.
            await agent.stop()
            await thread(netlink.remove_netns, namespace)
            stray = names.router_namespace(str(uuid.uuid4()))
            await thread(netlink.ensure_netns, stray)
            started = time.monotonic()
            agent = _agent(prefix, state_dir, api_topic)
            await agent.start()

            async def reconciled() -> bool:
                return agent.reconciler.rounds >= 1

            await wait_for(reconciled, timeout=30)
            report = await request_audit(client, api_topic, timeout=30)
            assert report.clean, report.findings
            present = await thread(netlink.list_netns)
            assert namespace in present and stray not in present
            await _eventually(_ping, guests[0], ips[1])
            timings["restart+reconcile"] = time.monotonic() - started

            # Teardown through the API: the namespace goes with the router.
            assert (await api.delete("pA", f"/v2.0/floatingips/{fip['id']}")).status_code == 204
            for sub in lab["subnets"]:
                gone = await api.put(
                    "pA",
                    f"/v2.0/routers/{router_id}/remove_router_interface",
                    {"subnet_id": sub["id"]},
                )
                assert gone.status_code == 200
            assert (await api.delete("pA", f"/v2.0/routers/{router_id}")).status_code == 204

            async def removed() -> bool:
                return namespace not in await thread(netlink.list_netns)

            await wait_for(removed, timeout=15)
        finally:
            await agent.stop()
            await api_server.stop()
            for ns in [*guests, f"{prefix}x0"]:
                await thread(netlink.remove_netns, ns)
    print("timings:", {k: round(v, 2) for k, v in timings.items()})


async def test_router_static_routes_in_its_namespace(tmp_path, host_lab) -> None:
    """extraroute on the real kernel: a route set through the API appears in the router's
    namespace (read with pyroute2), a reconcile restores it when it goes missing, and it
    goes when removed through the API; the router's delete leaves nothing."""
    prefix, state_dir = host_lab
    api_topic = f"nettest-{prefix}-{secrets.token_hex(3)}"
    host = f"{prefix}-cn1"
    async with network_api(tmp_path, default_network_type="local", l3_host=host) as api:
        runtime = api.app.state.runtime
        api_server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await api_server.start()
        agent = _agent(prefix, state_dir, api_topic)
        await agent.start()
        try:
            net = await api.network("pA")
            sub = await api.subnet("pA", net["id"], "10.86.0.0/24")
            router = (await api.post("pA", "/v2.0/routers", {"router": {"name": "r"}})).json()
            path = f"/v2.0/routers/{router['router']['id']}"
            body = {"subnet_id": sub["id"]}
            assert (await api.put("pA", f"{path}/add_router_interface", body)).status_code == 200
            namespace = agent.host.names.router_namespace(router["router"]["id"])
            route = {"destination": "10.187.0.0/16", "nexthop": "10.86.0.254"}
            added = await api.put("pA", f"{path}/add_extraroutes", {"router": {"routes": [route]}})
            assert added.status_code == 200, added.text

            def has_route() -> bool:
                if namespace not in netlink.list_netns():
                    return False
                return kernel_routes(namespace).get("10.187.0.0/16") == ["10.86.0.254"]

            await _eventually(has_route, timeout=30)
            # Gone behind the agent's back: its reconcile puts it back.
            await thread(_sh, namespace, "ip", "route", "del", "10.187.0.0/16")
            assert not await thread(has_route)
            await agent.reconciler.run_once()
            assert await thread(has_route)

            gone = await api.put(
                "pA", f"{path}/remove_extraroutes", {"router": {"routes": [route]}}
            )
            assert gone.status_code == 200 and gone.json()["router"]["routes"] == []
            await _eventually(has_route, want=False, timeout=30)
            assert namespace in await thread(netlink.list_netns)  # the router itself stays
            assert (await api.put("pA", f"{path}/remove_router_interface", body)).status_code == 200
            assert (await api.delete("pA", path)).status_code == 204

            async def removed() -> bool:
                return namespace not in await thread(netlink.list_netns)

            await wait_for(removed, timeout=15)
        finally:
            await agent.stop()
            await api_server.stop()
