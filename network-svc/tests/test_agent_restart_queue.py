"""A network-agent that comes back drops the commands queued for its host while it was
down: its first reconcile reads the whole state afresh, and a stale command applied
after it (a new process keeps no tombstones) would bring back a network deleted
meanwhile. Real RabbitMQ, fake drivers."""

from __future__ import annotations

import secrets
import uuid

from common_rpc import RequestContext, RpcClient, use_context
from common_rpc.rpc import queue_name
from network_svc.agent.main import _purge_commands, build
from network_svc.agent.settings import AgentSettings
from network_svc.clients import AgentApi
from network_svc.contracts import NetworkState


async def test_commands_queued_while_down_are_dropped_at_start(tmp_path) -> None:
    settings = AgentSettings(
        host=f"fake-{secrets.token_hex(4)}",
        data_dir=tmp_path,
        agent_driver="fake",
        agent_name_prefix="zq" + secrets.token_hex(1),
        agent_reconcile_interval=3600,
        agent_api_topic=f"nettest-{secrets.token_hex(4)}",  # nobody serves it: no reconcile
        agent_api_timeout=1,
    )
    agent = build(settings)
    await agent.start()  # the host's queue exists from here on
    await agent.stop()
    client = RpcClient(agent.runtime.broker)
    network = NetworkState(network_id=str(uuid.uuid4()), generation=5)
    with use_context(RequestContext(roles=frozenset({"admin"}))):
        for _ in range(2):  # sent while the agent is down: queued
            await AgentApi(client, settings.host, timeout=30).cast_sync_network(network, 5)
    again = build(settings)
    try:
        await again.start()
        with use_context(RequestContext(roles=frozenset({"admin"}))):
            # queued behind whatever was left: once it answers, that was handled too
            await AgentApi(client, settings.host, timeout=30).inventory()
            await AgentApi(client, settings.host, timeout=30).inventory()
        assert network.network_id not in again.host.networks
        assert again.host.drivers.l2.networks == {}  # fake L2: what it was asked to make
        assert await _purge_commands(again) == 0  # nothing left behind
    finally:
        await again.stop()
        channel = await agent.runtime.broker.channel(agent.runtime.broker.config.url)
        await channel.queue_delete(queue_name(f"network.{settings.host}"))
        await agent.runtime.broker.close()
