"""A deleted network leaves the host at once (a cast to live agents), not at the next
periodic reconcile: on the real kernel, with the reconcile an hour away."""

from __future__ import annotations

import secrets
import time

from netapi_helpers import network_api
from test_agent_wiring import MEMBER, _agent, host_lab_fixture, thread  # noqa: F401

from common_rpc import RpcClient, use_context
from common_rpc.agents import agents_router
from common_rpc.testing import wait_for
from network_svc.drivers.linux import netlink
from network_svc.rpc.handlers import rpc as network_rpc


async def test_deleted_network_leaves_the_host_within_seconds(tmp_path, host_lab) -> None:
    prefix, state_dir = host_lab
    api_topic = f"nettest-{prefix}-{secrets.token_hex(3)}"
    async with network_api(tmp_path, default_network_type="local") as api:
        runtime = api.app.state.runtime
        api_server = runtime.serve(
            api_topic, api.app.state.deps, network_rpc, agents_router(runtime.sessions)
        )
        await api_server.start()
        agent = _agent(prefix, state_dir, api_topic)
        await agent.start()
        try:

            async def alive() -> bool:
                resp = await api.get("pA", "/v2.0/agents", "admin")
                return any(a["host"] == agent.settings.host for a in resp.json()["agents"])

            await wait_for(alive, timeout=10)
            net = await api.network("pA")
            await api.subnet("pA", net["id"], "10.71.0.0/24")
            port = await api.port("pA", net["id"], device_owner="compute:nova")
            with use_context(MEMBER):
                bound = await RpcClient(runtime.broker).call(
                    api_topic, "update_port_binding", port_id=port["id"],
                    host=agent.settings.host, timeout=30,
                )  # fmt: skip
            assert bound["status"] == "ACTIVE", bound
            names = agent.host.names
            bridge, namespace = names.bridge(net["id"]), names.dhcp_namespace(net["id"])
            dnsmasq = agent.host.drivers.dhcp
            assert bridge in await thread(netlink.links)
            assert namespace in await thread(netlink.list_netns)
            assert net["id"] in await thread(dnsmasq.running)

            resp = await api.delete("pA", f"/v2.0/ports/{port['id']}")
            assert resp.status_code == 204
            # the port went from the host; the network stays while it exists in the DB
            firewall = agent.host.drivers.firewall

            async def unwired() -> bool:
                return names.chain("i", port["id"]) not in await thread(firewall.list_owned)

            await wait_for(unwired, timeout=5)
            assert bridge in await thread(netlink.links)
            assert agent.reconciler.rounds == 1  # only the start's round: no reconcile since

            started = time.monotonic()
            assert (await api.delete("pA", f"/v2.0/networks/{net['id']}")).status_code == 204

            async def gone() -> bool:
                return (
                    net["id"] not in agent.host.networks  # the agent finished, not only the kernel
                    and bridge not in await thread(netlink.links)
                    and namespace not in await thread(netlink.list_netns)
                    and net["id"] not in await thread(dnsmasq.running)
                )

            await wait_for(gone, timeout=5)
            elapsed = time.monotonic() - started
            assert agent.reconciler.rounds == 1, "removed by the cast, not by a reconcile"
            print(f"network gone from the host {elapsed:.2f}s after DELETE")
        finally:
            await agent.stop()
            await api_server.stop()
