"""network-agent over real RabbitMQ with the fake drivers: newest generation wins; a
binding whose host does not answer leaves the port DOWN with a typed error."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from netapi_helpers import network_api

from common_rpc import RequestContext, RpcClient, use_context
from common_rpc.errors import Forbidden
from network_svc.agent.main import NetworkAgent, build
from network_svc.agent.settings import AgentSettings
from network_svc.clients import AgentApi
from network_svc.contracts import NetworkState, PortInfo, PortState, Rule
from network_svc.rpc.handlers import rpc as network_rpc


@pytest.fixture(name="agent")
async def agent_fixture(tmp_path) -> AsyncIterator[NetworkAgent]:
    settings = AgentSettings(
        host=f"fake-{secrets.token_hex(4)}",
        data_dir=tmp_path,
        agent_driver="fake",
        agent_name_prefix="zf" + secrets.token_hex(1),
        agent_reconcile_interval=3600,
        agent_api_topic=f"nettest-{secrets.token_hex(4)}",  # nobody serves it: no reconcile
        agent_api_timeout=1,
    )
    agent = build(settings)
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


def _network(mtu: int, generation: int) -> NetworkState:
    return NetworkState.model_validate(
        {
            "network_id": NET,
            "segmentation_type": "local",
            "segmentation_id": None,
            "mtu": mtu,
            "subnets": [{"subnet_id": "s1", "cidr": "10.9.0.0/24", "gateway_ip": "10.9.0.1"}],
            "dhcp_hosts": [{"mac": MAC, "ip": "10.9.0.10", "hostname": "host-10-9-0-10"}],
            "generation": generation,
        }
    )


NET, PORT, MAC = str(uuid.uuid4()), str(uuid.uuid4()), "fa:16:3e:00:00:0a"
PORT_SPEC = PortInfo(port_id=PORT, network_id=NET, mac=MAC, fixed_ips=["10.9.0.10"])
RULE = Rule(direction="ingress", protocol="icmp")


def _port(generation: int, rules: list[Rule], port: PortInfo = PORT_SPEC) -> PortState:
    return PortState(network=_network(1450, 2), port=port, rules=rules, generation=generation)


async def test_a_late_or_repeated_command_changes_nothing(agent: NetworkAgent) -> None:
    api = AgentApi(RpcClient(agent.runtime.broker), agent.settings.host, timeout=10)
    l2, fw = agent.host.drivers.l2, agent.host.drivers.firewall

    first = await api.sync_network(_network(1450, 2), 2)
    assert first.applied and first.observed_generation == 2 and first.mtu == 1450
    late = await api.sync_network(_network(9000, 1), 1)
    assert not late.applied and late.observed_generation == 2
    assert l2.networks[NET].mtu == 1450  # type: ignore[attr-defined]

    wired = await api.wire_port(_port(3, [RULE]))
    assert wired.applied and wired.observed_generation == 3
    assert wired.bridge == agent.host.names.bridge(NET)
    assert wired.mac == MAC and wired.mtu == 1450
    assert wired.device == agent.host.names.port_device(PORT)
    for generation in (3, 2):  # a duplicate, then a late one with other rules
        other = PORT_SPEC.model_copy(update={"mac": "x"})
        again = await api.wire_port(_port(generation, [], other))
        assert not again.applied and again.observed_generation == 3
    spec, rules = fw.ports[PORT]  # type: ignore[attr-defined]
    assert spec.mac == MAC and len(rules) == 1

    newer = await api.wire_port(_port(4, []))
    assert newer.applied and fw.ports[PORT][1] == ()  # type: ignore[attr-defined]
    unwired = await api.unwire_port(PORT)
    assert unwired.port_id == PORT and unwired.unwired
    assert PORT not in fw.ports  # type: ignore[attr-defined]

    # A reconcile that read the host's state before the port went re-applies generation 4
    # with force: the unwire's tombstone makes it old, so nothing comes back.
    stale = await agent.host.wire_port(_port(4, []), force=True)
    assert not stale.applied and stale.observed_generation == 4
    assert PORT not in fw.ports  # type: ignore[attr-defined]
    await api.unwire_port(PORT)  # a repeated unwire moves nothing on
    rebound = await api.wire_port(_port(5, [RULE]))  # a new bind
    assert rebound.applied and PORT in fw.ports  # type: ignore[attr-defined]


async def test_binding_to_a_silent_host_stays_down_with_a_typed_error(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        runtime = api.app.state.runtime
        api_topic = f"nettest-{secrets.token_hex(4)}"  # this test's API replica only
        server = runtime.serve(api_topic, api.app.state.deps, network_rpc)
        await server.start()
        try:
            net = await api.network("pA")
            await api.subnet("pA", net["id"], "10.9.0.0/24")
            port = await api.port("pA", net["id"], device_owner="compute:nova")
            client = RpcClient(runtime.broker)
            with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
                bound = await client.call(
                    api_topic,
                    "update_port_binding",
                    port_id=port["id"],
                    host=f"nobody-{secrets.token_hex(4)}",
                    timeout=30,
                )
                assert bound["status"] == "DOWN" and bound["binding:error"]["code"] == "timeout"
                with pytest.raises(Forbidden):
                    await client.call(api_topic, "host_state", host="cn1", timeout=10)
            shown = (await api.get("pA", f"/v2.0/ports/{port['id']}")).json()["port"]
            assert shown["status"] == "DOWN"
        finally:
            await server.stop()
