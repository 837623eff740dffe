"""The event stream over real HTTP, fed by the real RabbitMQ event exchange."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from gateway_fixtures import FakeTokenValidator, build_gateway, serve

from api_gateway.api.events import event_types_document
from api_gateway.domain.events import EventStream
from api_gateway.settings import GatewaySettings
from common_rpc import Broker, Event, EventPublisher, MessagingConfig, make_event
from common_rpc.broker import TRANSIENT_ERRORS
from common_rpc.contracts import all_contracts
from common_rpc.contracts.payloads import ServerPayload, VolumePayload
from common_rpc.testing import RabbitNode, signing_keys


@pytest.fixture
def validator() -> FakeTokenValidator:
    return FakeTokenValidator()


@pytest.fixture
def gateway(tmp_path, validator: FakeTokenValidator) -> Iterator[str]:
    signer, _public = signing_keys(tmp_path / "keys")
    settings = GatewaySettings(data_dir=tmp_path, log_json=False)
    with serve(build_gateway(settings, validator, signer, heartbeat_s=0.3)) as url:
        yield url


@pytest.fixture
async def publisher() -> AsyncIterator[EventPublisher]:
    broker = Broker(MessagingConfig(), name="test-events-sse")
    yield EventPublisher(broker)
    await broker.close()


def server_event(project_id: str, action: str = "create") -> Event:
    payload = ServerPayload(id=str(uuid.uuid4()), project_id=project_id, status="ACTIVE")
    return make_event(f"compute.server.{action}.end", payload)


def volume_event(project_id: str) -> Event:
    payload = VolumePayload(id=str(uuid.uuid4()), project_id=project_id, status="available", size=1)
    return make_event("volume.volume.create.end", payload)


class SseClient:
    """Reads one SSE response frame by frame."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def frame(self) -> dict[str, str]:
        """The next frame with fields (comments are kept aside)."""
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(": ")
                fields[name] = value
            elif fields:
                return fields
        raise AssertionError("stream ended")

    async def event_ids(self, wanted: set[str], timeout: float = 10.0) -> list[str]:
        """Ids of the events received until every wanted one came (others included)."""
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            while not wanted <= set(seen):
                frame = await self.frame()
                assert frame.get("event") != "error", frame
                seen.append(frame["id"])
                assert orjson.loads(frame["data"])["id"] == frame["id"]
        return seen


@asynccontextmanager
async def sse(url: str, token: str, query: str = "") -> AsyncIterator[SseClient]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = {"X-Auth-Token": token}
        async with http.stream("GET", f"/v1/events{query}", headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            client = SseClient(response)
            # The first line arrives once the subscription exists: events after it are ours.
            first = await anext(client.lines)
            assert first == ": connected"
            yield client


async def test_a_client_sees_its_projects_events_only(
    gateway: str, validator: FakeTokenValidator, publisher: EventPublisher
) -> None:
    a, b = f"pa-{uuid.uuid4().hex[:8]}", f"pb-{uuid.uuid4().hex[:8]}"
    async with sse(gateway, validator.issue(a, "reader")) as client:
        theirs, mine = server_event(b), server_event(a)
        # An id with a newline would let a producer forge SSE frames: never passed on.
        forged = server_event(a).model_copy(update={"id": "x\nevent: fake"})
        for event in (theirs, forged, mine):  # the first two would arrive first if leaked
            await publisher.publish(event)
        assert await client.event_ids({mine.id}) == [mine.id]


async def test_an_admin_may_see_every_project(
    gateway: str, validator: FakeTokenValidator, publisher: EventPublisher
) -> None:
    a, b = f"pa-{uuid.uuid4().hex[:8]}", f"pb-{uuid.uuid4().hex[:8]}"
    admin = validator.issue("admin-project", "admin")
    async with sse(gateway, admin, "?all_projects=true") as client:
        events = [server_event(a), volume_event(b)]
        for event in events:
            await publisher.publish(event)
        seen = await client.event_ids({e.id for e in events})
    assert [i for i in seen if i in {e.id for e in events}] == [e.id for e in events]


async def test_type_patterns_filter_events(
    gateway: str, validator: FakeTokenValidator, publisher: EventPublisher
) -> None:
    a = f"pa-{uuid.uuid4().hex[:8]}"
    query = "?type=volume.volume.*.end&type=compute.server.delete.%23"
    async with sse(gateway, validator.issue(a, "member"), query) as client:
        events = [server_event(a, "create"), volume_event(a), server_event(a, "delete")]
        for event in events:
            await publisher.publish(event)
        assert await client.event_ids({events[2].id}) == [events[1].id, events[2].id]


async def test_idle_streams_get_heartbeats(gateway: str, validator: FakeTokenValidator) -> None:
    async with sse(gateway, validator.issue("p-idle", "reader")) as client:
        async with asyncio.timeout(5):
            while "heartbeat" not in client.comments:
                line = await anext(client.lines)
                if line.startswith(":"):
                    client.comments.append(line[1:].strip())


async def test_refusals(gateway: str, validator: FakeTokenValidator) -> None:
    member = validator.issue("p1", "member")
    unscoped = validator.issue(None)
    async with httpx.AsyncClient(base_url=gateway) as http:

        async def get(path: str, token: str | None) -> httpx.Response:
            headers = {"X-Auth-Token": token} if token else {}
            return await http.get(path, headers=headers)

        no_token = await get("/v1/events", None)
        assert no_token.status_code == 401
        assert no_token.json()["error"]["code"] == 401
        assert (await get("/v1/events", "bogus")).status_code == 401
        assert (await get("/v1/events/types", None)).status_code == 401
        assert (await get("/v1/events?all_projects=true", member)).status_code == 403
        assert (await get("/v1/events", unscoped)).status_code == 403
        assert (await get("/v1/events?type=compute..x", member)).status_code == 400
        assert (await get("/v1/events?type=a%20b", member)).status_code == 400


async def test_types_document_lists_every_contract_with_its_schema(
    gateway: str, validator: FakeTokenValidator
) -> None:
    async with httpx.AsyncClient(base_url=gateway) as http:
        reply = await http.get("/v1/events/types", headers={"X-Auth-Token": validator.issue("p1")})
    assert reply.status_code == 200
    listed = {item["event_type"]: item for item in reply.json()["event_types"]}
    assert set(listed) == {c.event_type for c in all_contracts()}
    port = listed["network.port.update.end"]
    assert port["version"] == "1.0" and port["description"]
    assert {"id", "project_id", "network_id", "status"} <= set(port["schema"]["required"])
    assert port["schema"]["properties"]["fixed_ips"]["type"] == "array"


async def test_a_slow_client_is_dropped_with_an_error_not_waited_for() -> None:
    stream = EventStream(Broker(MessagingConfig()), client_queue_size=2)
    slow = stream.frames("p1", ("#",))
    fast = stream.frames("p1", ("#",))
    assert await anext(slow) == b": connected\n\n"
    assert await anext(fast) == b": connected\n\n"
    assert stream.client_count == 2
    received: list[bytes] = []
    for _ in range(5):
        stream.deliver(server_event("p1"))
        received.append(await anext(fast))  # a reader that keeps up gets everything
    frame = await anext(slow)
    assert frame.startswith(b"event: error\n")
    payload: dict[str, Any] = orjson.loads(frame.split(b"data: ", 1)[1])
    assert payload["code"] == "stream_closed"
    assert stream.client_count == 1
    with pytest.raises(StopAsyncIteration):
        await anext(slow)
    assert all(f.startswith(b"id: ") for f in received)
    await fast.aclose()
    assert stream.client_count == 0


def test_types_document_is_built_once() -> None:
    assert event_types_document() is event_types_document()


async def _next_event(frames: AsyncIterator[bytes], heartbeats: int) -> bytes | None:
    """The next event frame, or None after ``heartbeats`` idle beats.

    Counting beats instead of cancelling ``anext``: a cancelled generator is a closed one.
    """
    for _ in range(heartbeats + 1):
        frame = await anext(frames)
        if not frame.startswith(b":"):
            return frame
    return None


async def test_the_stream_comes_back_after_a_broker_restart() -> None:
    if shutil.which("rabbitmq-server") is None:
        pytest.skip("needs rabbitmq-server for a private node")
    node = await asyncio.to_thread(RabbitNode.start_new)
    broker = Broker(MessagingConfig(url=node.url, heartbeat_s=2), name="test-sse-restart")
    publisher = EventPublisher(Broker(MessagingConfig(url=node.url, heartbeat_s=2)))
    stream = EventStream(broker, heartbeat_s=0.5)
    try:
        await stream.start()
        frames = stream.frames("p1", ("#",))
        await anext(frames)
        await publisher.publish(server_event("p1"))
        assert (await _next_event(frames, heartbeats=10) or b"").startswith(b"id: ")
        await asyncio.to_thread(node.stop_app)
        await asyncio.to_thread(node.start_app)
        # The robust channel declares the process's queue again: events flow once more.
        async with asyncio.timeout(60):
            while True:
                event = server_event("p1")
                try:
                    await asyncio.wait_for(publisher.publish(event), 5)
                except (TimeoutError, *TRANSIENT_ERRORS):
                    await asyncio.sleep(0.2)  # the broker is still coming back
                    continue
                frame = await _next_event(frames, heartbeats=4)
                if frame is not None and event.id.encode() in frame:
                    break
        await frames.aclose()
    finally:
        await stream.stop()
        await broker.close()
        await publisher.broker.close()
        await asyncio.to_thread(node.destroy)
