"""Member sets across hosts (RabbitMQ, fake drivers): a port bound on one host enters its
group's set on every other host whose rules match on the group, and leaves it when
deleted, by casts; no reconcile runs meanwhile."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from netapi_helpers import Api, network_api

from common_rpc import RequestContext, RpcClient, use_context
from common_rpc.testing import wait_for
from network_svc.agent.main import NetworkAgent, build
from network_svc.agent.settings import AgentSettings
from network_svc.rpc.handlers import rpc as network_rpc

MEMBER = RequestContext(project_id="pA", roles=frozenset({"member"}))


@asynccontextmanager
async def _agents(tmp_path: Path, api_topic: str, count: int) -> AsyncIterator[list[NetworkAgent]]:
    agents = [
        build(
            AgentSettings(
                host=f"fake-{secrets.token_hex(4)}",
                data_dir=tmp_path / f"agent{n}",
                agent_driver="fake",
                agent_name_prefix="zf" + secrets.token_hex(1),
                agent_reconcile_interval=3600,
                agent_api_topic=api_topic,
                agent_api_timeout=10,
            )
        )
        for n in range(count)
    ]
    for agent in agents:
        await agent.start()
    try:
        yield agents
    finally:
        for agent in agents:
            await agent.stop()


async def _bind(client: RpcClient, topic: str, port_id: str, host: str) -> None:
    with use_context(MEMBER):
        reply = await client.call(
            topic, "update_port_binding", port_id=port_id, host=host, timeout=30
        )
    assert reply["status"] == "ACTIVE", reply


async def _group(api: Api) -> str:
    resp = await api.post("pA", "/v2.0/security-groups", {"security_group": {"name": "g"}})
    group = str(resp.json()["security_group"]["id"])
    rule = {"security_group_id": group, "direction": "ingress", "remote_group_id": group}
    created = await api.post("pA", "/v2.0/security-group-rules", {"security_group_rule": rule})
    assert created.status_code == 201, created.text
    return group


async def test_a_bound_port_enters_the_set_on_other_hosts_and_leaves_it(tmp_path) -> None:
    api_topic = f"nettest-{secrets.token_hex(4)}"
    async with network_api(tmp_path, default_network_type="local") as api:
        runtime = api.app.state.runtime
        server = runtime.serve(api_topic, api.app.state.deps, network_rpc)
        await server.start()
        try:
            async with _agents(tmp_path, api_topic, 2) as (one, two):
                await wait_for(lambda: _rounds(one, two), timeout=10)
                group = await _group(api)
                net = await api.network("pA")
                await api.subnet("pA", net["id"], "10.66.0.0/24")
                a, b = [
                    await api.port("pA", net["id"], device_owner="compute:nova",
                                   security_groups=[group])
                    for _ in range(2)
                ]  # fmt: skip
                ip_a, ip_b = (p["fixed_ips"][0]["ip_address"] for p in (a, b))
                client = RpcClient(runtime.broker)
                await _bind(client, api_topic, a["id"], two.settings.host)
                name = two.host.names.ipset(group, "IPv4")
                sets = two.host.drivers.firewall.sets
                assert sets == {name: tuple(sorted([ip_a, ip_b]))}  # from a's own wiring

                # b is wired on host one; host two learns nothing new: both were members
                await _bind(client, api_topic, b["id"], one.settings.host)
                c = await api.port(
                    "pA", net["id"], device_owner="compute:nova", security_groups=[group]
                )
                ip_c = c["fixed_ips"][0]["ip_address"]
                assert ip_c not in sets[name]
                await _bind(client, api_topic, c["id"], one.settings.host)

                async def has(ip: str, want: bool) -> bool:
                    return (ip in sets.get(name, ())) is want

                await wait_for(lambda: has(ip_c, True), timeout=5)
                assert (await api.delete("pA", f"/v2.0/ports/{b['id']}")).status_code == 204
                await wait_for(lambda: has(ip_b, False), timeout=5)
                assert sets[name] == tuple(sorted([ip_a, ip_c]))
                assert one.reconciler.rounds == two.reconciler.rounds == 1
        finally:
            await server.stop()


async def _rounds(*agents: NetworkAgent) -> bool:
    return all(agent.reconciler.rounds >= 1 for agent in agents)
