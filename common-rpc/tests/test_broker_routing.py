"""A broker per service: a topic mapped to its own broker URL meets its callers there."""

from __future__ import annotations

import pytest

from common_rpc import Broker, MessagingConfig, RpcClient, RpcRouter, RpcServer
from common_rpc.testing import RabbitNode

router = RpcRouter()


@router.handler()
async def where(deps: str) -> str:
    return deps


async def test_topics_meet_on_their_own_broker(rabbit_node: RabbitNode, uid: str) -> None:
    volume_topic = f"vol{uid}"
    config = MessagingConfig(topic_urls={volume_topic: rabbit_node.url})
    server_broker, client_broker = Broker(config, name="srv"), Broker(config, name="cli")
    volume = RpcServer(server_broker, volume_topic, "private-node")
    compute = RpcServer(server_broker, f"cmp{uid}", "main-broker")
    for server in (volume, compute):
        server.include(router)
        await server.start()
    client = RpcClient(client_broker)
    assert await client.call(volume_topic, "where", timeout=5) == "private-node"
    assert await client.call(f"cmp{uid}", "where", timeout=5) == "main-broker"

    # The volume queue lives on the private node only.
    probe = Broker(MessagingConfig(), name="probe")
    main = await (await probe.connection(config.url)).channel()
    with pytest.raises(Exception):  # noqa: B017 (passive declare of a missing queue)
        await main.declare_queue(f"rpc.{volume_topic}", passive=True)
    for server in (volume, compute):
        await server.stop()
    cleanup = await probe.channel(config.url)
    await cleanup.queue_delete(f"rpc.cmp{uid}")
    await probe.close()
    await server_broker.close()
    await client_broker.close()


async def test_quorum_rpc_queues_work(broker: Broker, uid: str) -> None:
    quorum = Broker(MessagingConfig(rpc_queue_type="quorum"), name="quorum")
    server = RpcServer(quorum, f"q{uid}", "quorum")
    server.include(router)
    await server.start()
    assert await RpcClient(quorum).call(f"q{uid}", "where", timeout=5) == "quorum"
    await server.stop()
    channel = await quorum.channel(quorum.config.url)
    await channel.queue_delete(f"rpc.q{uid}")
    await channel.close()
    await quorum.close()
