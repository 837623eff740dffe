"""Agent heartbeats into the ``agents`` table, and the audit request, over real RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc import Broker, MessagingConfig, RpcClient, RpcRouter, RpcServer
from common_rpc.agents import AgentHeartbeat, AgentRegistry, agents_router, record_heartbeat
from common_rpc.audit import AuditReport, request_audit, require_admin
from common_rpc.chassis.settings import ServiceSettings
from common_rpc.cli.audit import collect
from common_rpc.errors import Forbidden, NotFound
from common_rpc.tables import agents
from common_rpc.testing import wait_for


@pytest.fixture
async def topic(broker: Broker, uid: str) -> AsyncIterator[str]:
    name = f"agents{uid}"
    yield name
    channel = await broker.channel(broker.config.url)
    await channel.queue_delete(f"rpc.{name}")
    await channel.close()


async def test_registry_upserts_and_ages(sessions: async_sessionmaker[AsyncSession]) -> None:
    started = datetime.now(UTC)
    for cpus in (2, 4):  # the second heartbeat updates the same row
        async with sessions() as session, session.begin():
            await record_heartbeat(
                session,
                binary="compute-agent",
                host="cn1",
                topic="compute.cn1",
                started_at=started,
                capabilities={"vcpus": cpus},
            )
    registry = AgentRegistry(sessions, down_after_s=30)
    [agent] = await registry.list()
    assert (agent.binary, agent.host, agent.alive) == ("compute-agent", "cn1", True)
    assert agent.capabilities == {"vcpus": 4}
    assert await registry.alive_hosts("compute-agent") == ["cn1"]
    assert await registry.alive_hosts("network-agent") == []

    # A host whose last heartbeat is older than down_after is down, and not scheduled.
    async with sessions() as session, session.begin():
        old = datetime.now(UTC) - timedelta(seconds=31)
        await session.execute(update(agents).values(last_heartbeat=old))
    assert (await registry.get(agent.id)).alive is False
    assert await registry.alive_hosts("compute-agent") == []

    disabled = await registry.set_admin_state(agent.id, False)
    assert disabled.admin_state_up is False
    await registry.delete(agent.id)
    with pytest.raises(NotFound):
        await registry.get(agent.id)


async def test_heartbeat_reaches_the_service(
    broker: Broker, topic: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server = RpcServer(broker, topic, None)
    server.include(agents_router(sessions))
    await server.start()
    heartbeat = AgentHeartbeat(
        RpcClient(broker),
        service=topic,
        binary="network-agent",
        host="h1",
        capabilities=lambda: {"bridges": 3},
        interval_s=0.2,
    )
    registry = AgentRegistry(sessions)
    heartbeat.start()
    try:

        async def reported_twice() -> bool:
            listed = await registry.list(binary="network-agent")
            return bool(listed) and listed[0].last_heartbeat > listed[0].started_at

        await wait_for(reported_twice, timeout=10)
        [agent] = await registry.list()
        assert agent.topic == f"{topic}.h1" and agent.capabilities == {"bridges": 3}
    finally:
        await heartbeat.stop()
        await server.stop()


audit_rpc = RpcRouter()


@audit_rpc.handler()
async def audit(deps: Any) -> dict[str, Any]:
    require_admin()
    report = AuditReport(service="widgets")
    report.count("widgets", 2)
    report.add("orphan", "bridge", "br-x", host="h1", detail="no such network")
    return report.to_wire()


async def test_audit_round_trip_and_unanswered(broker: Broker, topic: str, uid: str) -> None:
    server = RpcServer(broker, topic, None)
    server.include(audit_rpc)
    await server.start()
    try:
        report = await request_audit(RpcClient(broker), topic, timeout=5)
        assert report.checked == {"widgets": 2} and not report.clean
        assert report.findings[0].model_dump() == {
            "kind": "orphan",
            "resource": "bridge",
            "id": "br-x",
            "host": "h1",
            "detail": "no such network",
        }
        # A tenant's call is refused: audit reads every project.
        with pytest.raises(Forbidden):
            await RpcClient(broker).call(topic, "audit", timeout=5)
        silent = f"silent{uid}"
        reports, errors = await collect(
            [topic, silent], timeout=1, settings=ServiceSettings(amqp_url=MessagingConfig().url)
        )
        assert [r.service for r in reports] == ["widgets"]
        assert list(errors) == [silent]
    finally:
        await server.stop()
        channel = await broker.channel(broker.config.url)
        await channel.queue_delete(f"rpc.silent{uid}")
        await channel.close()
