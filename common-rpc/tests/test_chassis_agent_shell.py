"""The shared agent shell over the real RabbitMQ: commands, host_state reconcile, heartbeat."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

from common_rpc import Broker, RpcRouter, RpcServer, current_context
from common_rpc.agents import REPORT_STATE, Heartbeat
from common_rpc.chassis.agent import (
    AgentSettings,
    AgentShell,
    HostStateRequest,
    agent_topic,
)
from common_rpc.chassis.settings import ServiceSettings
from common_rpc.methods import Empty, Message, Method
from common_rpc.testing import wait_for


class WidgetState(Message):
    widgets: list[str] = []


class CountReply(Message):
    count: int


HOST_STATE = Method("host_state", HostStateRequest, WidgetState)
COUNT = Method("count", Empty, CountReply)


class WidgetSettings(AgentSettings):
    service_name: ClassVar[str] = "widget"
    model_config = SettingsConfigDict(env_prefix="WIDGET_", extra="ignore")


class WidgetHost:
    """The host object of a test agent: it holds widgets, as a driver would hold bridges."""

    def __init__(self) -> None:
        self.widgets: set[str] = set()
        self.seen_by: list[str | None] = []

    async def converge(self, state: WidgetState, since: float) -> dict[str, Any]:
        assert isinstance(state, WidgetState)
        self.seen_by.append(current_context().user_id)
        removed = sorted(self.widgets - set(state.widgets))
        self.widgets = set(state.widgets)
        return {"widgets": len(self.widgets), "removed": removed}


commands = RpcRouter()


@commands.implement(COUNT)
async def count(host: WidgetHost, request: Empty) -> CountReply:
    return CountReply(count=len(host.widgets))


class FakeApi:
    """The service side, as a test fake: answers host_state and records heartbeats."""

    def __init__(self) -> None:
        self.desired: dict[str, list[str]] = {}
        self.heartbeats: list[dict[str, Any]] = []


api = RpcRouter()


@api.implement(HOST_STATE)
async def host_state(deps: FakeApi, request: HostStateRequest) -> WidgetState:
    return WidgetState(widgets=deps.desired.get(request.host, []))


@api.implement(REPORT_STATE)
async def report_state(deps: FakeApi, beat: Heartbeat) -> None:
    deps.heartbeats.append({"binary": beat.binary, "topic": beat.topic, "caps": beat.capabilities})


@pytest.fixture
async def fake_api(broker: Broker, uid: str):
    fake = FakeApi()
    server = RpcServer(broker, f"widgetapi{uid}", fake)
    server.include(api)
    await server.start()
    yield f"widgetapi{uid}", fake
    await server.stop()
    channel = await broker.channel(broker.config.url)
    for queue in (f"rpc.widgetapi{uid}", f"rpc.widget.h{uid}"):
        await channel.queue_delete(queue)
    await channel.close()


async def test_the_shell_serves_commands_reconciles_and_heartbeats(
    broker: Broker, fake_api, uid: str
) -> None:
    api_topic, fake = fake_api
    fake.desired[f"h{uid}"] = ["a", "b"]
    settings = WidgetSettings(
        host=f"h{uid}",
        agent_api_topic=api_topic,
        agent_reconcile_interval=0.3,
        agent_heartbeat_interval=0.3,
    )
    host = WidgetHost()
    started: list[str] = []

    async def prepare() -> None:
        started.append("before")

    shell = AgentShell.build(
        settings,
        binary="widget-agent",
        host_object=host,
        commands=commands,
        host_state=HOST_STATE,
        converge=host.converge,
        capabilities=lambda: {"size": len(host.widgets)},
        before_start=prepare,
    )
    await shell.start()
    try:
        assert started == ["before"]

        async def converged() -> bool:
            return host.widgets == {"a", "b"}

        await wait_for(converged, timeout=10)
        reply = await shell.runtime.rpc.invoke(
            agent_topic("widget", f"h{uid}"), COUNT, Empty(), timeout=5
        )
        assert reply == CountReply(count=2)
        fake.desired[f"h{uid}"] = ["b"]  # the next round removes what the service dropped

        async def removed() -> bool:
            return host.widgets == {"b"}

        await wait_for(removed, timeout=10)
        assert set(host.seen_by) == {"widget-agent"}

        async def reported() -> bool:
            return any(h["caps"] == {"size": 1} for h in fake.heartbeats)

        await wait_for(reported, timeout=10)
        beat = fake.heartbeats[-1]
        assert beat["binary"] == "widget-agent" and beat["topic"] == f"widget.h{uid}"
        assert shell.reconciler.rounds >= 2
    finally:
        await shell.stop()


def test_a_reconciler_asks_only_host_state() -> None:
    wrong = Method("host_servers", HostStateRequest, WidgetState)
    with pytest.raises(ValueError, match="host_state"):
        AgentShell.build(
            WidgetSettings(host="h"),
            binary="widget-agent",
            host_object=WidgetHost(),
            commands=commands,
            host_state=wrong,
            converge=WidgetHost().converge,
        )


def test_settings_that_would_read_the_shared_prefix_for_everything_are_refused() -> None:
    class ServiceWide(ServiceSettings):  # a service's own settings, as ComputeSettings
        service_name: ClassVar[str] = "widget"
        model_config = SettingsConfigDict(env_prefix="WIDGET_", extra="ignore")

    with pytest.raises(TypeError, match="STACKLING_"):

        class Mixed(ServiceWide, AgentSettings):  # the chassis config, merged last, wins
            pass

    class Fine(AgentSettings, ServiceWide):
        pass

    assert Fine.model_config["env_prefix"] == "WIDGET_"
