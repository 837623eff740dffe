"""Remote-group rules through member sets (ipset), API + network-agent on the real kernel.

Guests a and b are in group g, which lets in traffic from g; c is in h (egress only).
a and b reach each other, c reaches neither until it joins g (a port update, pushed to
the host at once); a's chain does not change when it does (one rule per security-group
rule, whatever the group's size). Deleting g's rule closes g at once, adding it back opens
it (rule changes are pushed too; the agent's reconcile never runs here). The member set
is then audited, and goes from the host with the last port that needs it.
"""

from __future__ import annotations

import secrets
from typing import Any

from driver_fixtures import UDHCPC_SCRIPT
from netapi_helpers import Api, network_api
from test_agent_wiring import (  # noqa: F401
    MEMBER,
    _agent,
    _dhcp,
    _ping,
    _plug_guest,
    host_lab_fixture,
    thread,
)

from common_rpc import RpcClient, use_context
from common_rpc.agents import agents_router
from common_rpc.audit import request_audit
from common_rpc.testing import wait_for
from network_svc.drivers.linux import netlink, priv
from network_svc.rpc.handlers import rpc as network_rpc


async def _group(api: Api, name: str) -> str:
    resp = await api.post("pA", "/v2.0/security-groups", {"security_group": {"name": name}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["security_group"]["id"])


def _chain_rules(chain: str) -> list[str]:
    return priv.run(["iptables", "-w", "10", "-S", chain], timeout=15).splitlines()


async def test_members_of_a_group_reach_each_other_and_a_joiner_gets_in(tmp_path, host_lab) -> None:
    prefix, state_dir = host_lab
    script = state_dir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    api_topic = f"nettest-{prefix}-{secrets.token_hex(3)}"
    async with network_api(tmp_path, default_network_type="local") as api:
        runtime = api.app.state.runtime
        api_server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await api_server.start()
        agent = _agent(prefix, state_dir, api_topic)
        await agent.start()
        guests: list[str] = []
        try:

            async def alive() -> bool:
                resp = await api.get("pA", "/v2.0/agents", "admin")
                return any(a["host"] == agent.settings.host for a in resp.json()["agents"])

            await wait_for(alive, timeout=10)
            g, h = await _group(api, "g"), await _group(api, "h")
            rule = {"security_group_id": g, "direction": "ingress", "remote_group_id": g}
            resp_rule = await api.post(
                "pA", "/v2.0/security-group-rules", {"security_group_rule": rule}
            )
            assert resp_rule.status_code == 201, resp_rule.text
            net = await api.network("pA")
            await api.subnet("pA", net["id"], "10.69.0.0/24")
            ports = [
                await api.port("pA", net["id"], device_owner="compute:nova", security_groups=sg)
                for sg in ([g], [g], [h])
            ]
            client = RpcClient(runtime.broker)
            bound: list[dict[str, Any]] = []
            with use_context(MEMBER):
                for port in ports:
                    reply = await client.call(
                        api_topic, "update_port_binding", port_id=port["id"],
                        host=agent.settings.host, timeout=30,
                    )  # fmt: skip
                    assert reply["status"] == "ACTIVE", reply
                    bound.append(reply)
            for n, reply in enumerate(bound):
                guests.append(await thread(_plug_guest, prefix, n, reply))
            ips = [b["fixed_ips"][0]["ip_address"] for b in bound]
            for n, ns in enumerate(guests):
                assert await thread(_dhcp, ns, f"{prefix}e{n}", script) == ips[n]
            a, b, c = guests
            assert await thread(_ping, a, ips[1]) and await thread(_ping, b, ips[0])
            assert not await thread(_ping, c, ips[0]) and not await thread(_ping, c, ips[1])

            names = agent.host.names
            member_set = names.ipset(g, "IPv4")
            sets = agent.host.drivers.firewall.sets
            assert await thread(sets.members, member_set) == sorted(ips[:2])
            ingress = names.chain("i", ports[0]["id"])
            before = await thread(_chain_rules, ingress)
            assert sum("--match-set" in line for line in before) == 1
            report = await request_audit(client, api_topic, timeout=30)
            assert report.clean, report.findings
            assert report.checked["member_sets"] == 1

            # c joins g: the update is pushed (no reconcile runs here): its address enters
            # the set on the hosts matching on g, and its own chain gets g's rules
            body = {"port": {"security_groups": [g, h]}}
            resp = await api.put("pA", f"/v2.0/ports/{ports[2]['id']}", body)
            assert resp.status_code == 200, resp.text

            async def joined() -> bool:
                return await thread(sets.members, member_set) == sorted(ips)

            await wait_for(joined, timeout=5)
            assert await thread(_ping, c, ips[0]) and await thread(_ping, c, ips[1])
            assert await thread(_chain_rules, ingress) == before  # the rule count stays

            async def reaches(source: str, ip: str) -> bool:
                return await thread(_ping, source, ip)

            await wait_for(lambda: reaches(a, ips[2]), timeout=10)
            report = await request_audit(client, api_topic, timeout=30)
            assert report.clean, report.findings

            # the rule goes: g's ports are re-wired at once and g is closed; back, it opens
            rule_id = resp_rule.json()["security_group_rule"]["id"]
            resp = await api.delete("pA", f"/v2.0/security-group-rules/{rule_id}")
            assert resp.status_code == 204, resp.text

            async def closed() -> bool:
                return not await thread(_ping, b, ips[0])

            await wait_for(closed, timeout=10)
            resp = await api.post("pA", "/v2.0/security-group-rules", {"security_group_rule": rule})
            assert resp.status_code == 201, resp.text
            await wait_for(lambda: reaches(b, ips[0]), timeout=10)

            # a set nobody needs is an orphan; the reconcile removes it
            stray = names.ipset("00000000-dead-beef-0000-000000000000", "IPv4")
            await thread(sets.ensure, stray, "IPv4", ["10.69.0.99"])
            report = await request_audit(client, api_topic, timeout=30)
            found = {(f.kind, f.resource, f.id) for f in report.findings}
            assert found == {("orphan", "member_set", stray)}
            await agent.reconciler.run_once()
            assert await thread(agent.host.drivers.firewall.list_sets) == {member_set}

            # the ports go: so does the set, once no rule names it
            for port in ports:
                assert (await api.delete("pA", f"/v2.0/ports/{port['id']}")).status_code == 204

            async def set_gone() -> bool:
                return not await thread(agent.host.drivers.firewall.list_sets)

            await wait_for(set_gone, timeout=10)
        finally:
            await agent.stop()
            await api_server.stop()
            for ns in guests:
                await thread(netlink.remove_netns, ns)
