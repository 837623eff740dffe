"""A subnet update reaches the data plane: a guest's DHCP client is answered with the new
router, DNS servers and classless static routes, reaches the router that now holds the
gateway, and gets no answer once DHCP is off (and one again once it is back on).

network-api and network-agent (Linux drivers, random name prefix) run in-process as in
test_agent_wiring; the guest is a namespace plugged as a bound port and asks with busybox
udhcpc, whose script prints what the server answered. Everything with the prefix is
removed, even on failure.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from netapi_helpers import network_api
from test_agent_wiring import MEMBER, _agent, _ping, _plug_guest, host_lab_fixture, thread

from common_rpc import RpcClient, use_context
from common_rpc.agents import agents_router
from common_rpc.audit import AuditReport, request_audit
from common_rpc.testing import wait_for
from network_svc.drivers.linux import netlink, priv
from network_svc.rpc.handlers import rpc as network_rpc

__all__ = ["host_lab_fixture"]  # the fixture is used by name

# udhcpc runs this with "bound": one line per answer, the options it was given.
SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    echo "answer ip=$ip|router=$router|dns=$dns|routes=$staticroutes"
    ;;
esac
exit 0
"""


def _ask(ns: str, dev: str, script: Path) -> dict[str, str] | None:
    """One DHCP exchange; what the server answered (None: no answer)."""
    argv = ["busybox", "udhcpc", "-i", dev, "-f", "-q", "-n", "-t", "3", "-T", "1"]
    argv += ["-O", "staticroutes", "-O", "dns", "-O", "router", "-s", str(script)]
    out = priv.run(priv.in_netns(ns, argv), timeout=30, check=False)
    for line in out.splitlines():
        if line.startswith("answer "):
            return dict(part.split("=", 1) for part in line[len("answer ") :].split("|"))
    return None


async def test_subnet_update_reaches_dhcp_clients_and_router(tmp_path, host_lab) -> None:
    prefix, state_dir = host_lab
    script = state_dir / "answer.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    api_topic = f"nettest-{prefix}-{secrets.token_hex(3)}"
    host = f"{prefix}-cn1"
    guest = ""
    async with network_api(tmp_path, default_network_type="local", l3_host=host) as api:
        runtime = api.app.state.runtime
        client = RpcClient(runtime.broker)
        api_server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await api_server.start()
        agent = _agent(prefix, state_dir, api_topic)
        await agent.start()
        try:
            net = await api.network("pA")
            pool = [{"start": "10.74.0.10", "end": "10.74.0.200"}]
            sub = await api.subnet(
                "pA", net["id"], "10.74.0.0/24", allocation_pools=pool,
                dns_nameservers=["192.0.2.53"],
            )  # fmt: skip
            port = await api.port("pA", net["id"], device_owner="compute:nova")
            with use_context(MEMBER):
                bound = await RpcClient(runtime.broker).call(
                    api_topic, "update_port_binding", port_id=port["id"], host=host, timeout=30
                )
            assert bound["status"] == "ACTIVE", bound
            guest = await thread(_plug_guest, prefix, 0, bound)
            dev = f"{prefix}e0"
            first = await thread(_ask, guest, dev, script)
            assert first is not None and first["ip"] == bound["fixed_ips"][0]["ip_address"]
            assert first["router"] == "10.74.0.1" and first["dns"] == "192.0.2.53"
            assert first["routes"] == ""  # no host routes: no option 121

            # A router whose interface (added by port) holds 10.74.0.254.
            leg = await api.port(
                "pA", net["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.74.0.254"}]
            )
            router = (await api.post("pA", "/v2.0/routers", {"router": {"name": "r"}})).json()
            rpath = f"/v2.0/routers/{router['router']['id']}"
            added = await api.put("pA", f"{rpath}/add_router_interface", {"port_id": leg["id"]})
            assert added.status_code == 200, added.text

            # The update: the router's address becomes the gateway, new DNS servers, a route.
            change = {
                "gateway_ip": "10.74.0.254",
                "dns_nameservers": ["198.51.100.1", "198.51.100.2"],
                "host_routes": [{"destination": "10.99.0.0/16", "nexthop": "10.74.0.254"}],
            }
            path = f"/v2.0/subnets/{sub['id']}"
            resp = await api.put("pA", path, {"subnet": change})
            assert resp.status_code == 200, resp.text
            answers: list[dict[str, str] | None] = []

            async def new_options() -> bool:
                answers.append(await thread(_ask, guest, dev, script))
                return answers[-1] is not None and answers[-1]["router"] == "10.74.0.254"

            await wait_for(new_options, timeout=30)
            answer = answers[-1]
            assert answer is not None
            assert answer["dns"].split() == ["198.51.100.1", "198.51.100.2"]
            # option 121 with the host route and, since it replaces option 3, the default
            assert answer["routes"].split() == [
                "10.99.0.0/16",
                "10.74.0.254",
                "0.0.0.0/0",
                "10.74.0.254",
            ]
            # The new gateway answers: the router's leg holds it.
            assert await thread(_ping, guest, "10.74.0.254")
            # What `stackling audit network` sees: the host as the updated DB wants it.
            checked = await _audited_clean(client, api_topic)
            assert (checked["dhcp_servers"], checked["routers"], checked["port_firewalls"]) == (
                1, 1, 1,
            ), checked  # fmt: skip
            # Now a router port holds the gateway: Neutron's refusal to move it.
            held = await api.put("pA", path, {"subnet": {"gateway_ip": "10.74.0.1"}})
            assert (
                held.status_code == 409 and held.json()["NeutronError"]["type"] == "GatewayIpInUse"
            )

            # DHCP off: the DHCP port goes, dnsmasq stops, the guest gets no answer.
            dnsmasq = agent.host.drivers.dhcp
            off = await api.put("pA", path, {"subnet": {"enable_dhcp": False}})
            assert off.status_code == 200, off.text
            dhcp_ports = f"/v2.0/ports?device_owner=network:dhcp&network_id={net['id']}"
            assert (await api.get("pA", dhcp_ports)).json()["ports"] == []

            async def dnsmasq_stopped() -> bool:
                return net["id"] not in await thread(dnsmasq.running)

            await wait_for(dnsmasq_stopped, timeout=30)
            assert await thread(_ask, guest, dev, script) is None
            checked = await _audited_clean(client, api_topic)  # no DHCP namespace left
            assert checked["dhcp_servers"] == 0, checked
            # And on again: a DHCP port, dnsmasq, and the same answer as before.
            on = await api.put("pA", path, {"subnet": {"enable_dhcp": True}})
            assert on.status_code == 200, on.text
            [server] = (await api.get("pA", dhcp_ports)).json()["ports"]
            answers.clear()

            async def answered() -> bool:
                answers.append(await thread(_ask, guest, dev, script))
                return answers[-1] is not None

            await wait_for(answered, timeout=30)
            assert answers[-1] is not None and answers[-1]["router"] == "10.74.0.254"
            assert await thread(_ping, guest, server["fixed_ips"][0]["ip_address"])

            gone = await api.put("pA", f"{rpath}/remove_router_interface", {"port_id": leg["id"]})
            assert gone.status_code == 200
            assert (await api.delete("pA", rpath)).status_code == 204
            checked = await _audited_clean(client, api_topic)  # no router namespace left
            assert (checked["dhcp_servers"], checked["routers"]) == (1, 0), checked
        finally:
            await agent.stop()
            await api_server.stop()
            if guest:
                await thread(netlink.remove_netns, guest)


async def _audited_clean(client: RpcClient, topic: str) -> dict[str, int]:
    """The network audit (what `stackling audit` asks for): DB and host agree, nothing
    missing or left over (bridge, dnsmasq and its leases, namespaces, chains, sets).
    The API tells the host with a cast, so the host may lag the answer by a moment; a
    finding that lasts is a failure. What it compared, for the caller to check."""
    reports: list[AuditReport] = []

    async def clean() -> bool:
        reports.append(await request_audit(client, topic, timeout=30))
        return reports[-1].clean

    with contextlib.suppress(TimeoutError):  # the last report says what lasted
        await wait_for(clean, timeout=10, interval=0.5)
    assert reports[-1].clean, reports[-1].findings
    assert reports[-1].checked["hosts"] == 1, reports[-1].checked
    return reports[-1].checked
