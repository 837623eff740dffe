"""network-svc deployed alone: only its database and a broker, no gateway, compute or volume.

The same thing ``docker compose up network-api`` does, without Docker: network-api runs
from its console script on a RabbitMQ virtual host of its own, with no other Stackling
process anywhere on that broker. A caller holding the deployment's signing key (what the
gateway would be) uses its API, and a consumer of its events, subscribed on the broker
like any other service, receives the network, subnet and port lifecycle in order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stack import Stack, broker_vhost

from common_rpc import Broker, MessagingConfig, RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair
from common_rpc.events import Event, EventSubscriber
from common_rpc.testing import wait_for

WANTED = [
    "network.network.create.end",
    "network.subnet.create.end",
    "network.port.create.end",
    "network.port.delete.end",
    "network.subnet.delete.end",
    "network.network.delete.end",
]


@pytest.fixture
def network_alone(tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    generate_keypair(tmp_path / "keys")
    with broker_vhost(f"alone-{uuid.uuid4().hex[:8]}") as amqp_url:
        stack = Stack(tmp_path, ("network",), env={"STACKLING_AMQP_URL": amqp_url})
        try:
            stack.start()
            stack.wait_ready()
            yield stack, amqp_url
        finally:
            stack.stop()


async def test_network_api_alone_serves_its_api_and_publishes_its_events(
    network_alone: tuple[Stack, str],
) -> None:
    stack, amqp_url = network_alone
    assert set(stack.procs) == {"network"}
    signer = IdentitySigner.from_file(stack.data_dir / "keys" / "identity.key")
    project = f"p-{uuid.uuid4().hex[:8]}"
    ctx = RequestContext(project_id=project, user_id="u1", roles=frozenset({"member"}))
    headers = {IDENTITY_HEADER: signer.sign(ctx)}

    received: list[Event] = []

    async def collect(event: Event) -> None:
        if event.project_id == project:
            received.append(event)

    broker = Broker(MessagingConfig(url=amqp_url), name="alone-consumer")
    subscriber = EventSubscriber(broker, f"watcher-{project}", ["network.#"], collect)
    await subscriber.start()
    try:
        async with httpx.AsyncClient(base_url=stack.url("network"), timeout=10) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            refused = await http.get("/v2.0/networks")  # no gateway identity: refused
            assert refused.status_code == 401, refused.text

            async def call(method: str, path: str, expect: int, **kw: object) -> dict:
                reply = await http.request(method, path, headers=headers, **kw)
                assert reply.status_code == expect, (method, path, reply.text)
                return reply.json() if reply.content else {}

            net = (await call("POST", "/v2.0/networks", 201, json={"network": {"name": "n"}}))[
                "network"
            ]
            body = {"subnet": {"network_id": net["id"], "cidr": "10.61.0.0/24", "ip_version": 4}}
            subnet = (await call("POST", "/v2.0/subnets", 201, json=body))["subnet"]
            port = (
                await call("POST", "/v2.0/ports", 201, json={"port": {"network_id": net["id"]}})
            )["port"]
            assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
            listed = await call("GET", "/v2.0/ports", 200, params={"network_id": net["id"]})
            assert port["id"] in {p["id"] for p in listed["ports"]}
            await call("DELETE", f"/v2.0/ports/{port['id']}", 204)
            await call("DELETE", f"/v2.0/subnets/{subnet['id']}", 204)
            await call("DELETE", f"/v2.0/networks/{net['id']}", 204)

        # The network's DHCP port comes and goes with its subnet: its events are there too.
        mine = {net["id"], subnet["id"], port["id"]}

        def lifecycle() -> list[str]:
            return [e.event_type for e in received if e.payload.get("id") in mine]

        async def all_arrived() -> bool:
            return len(lifecycle()) >= len(WANTED)

        await wait_for(all_arrived, timeout=20)
        await asyncio.sleep(0.5)  # a duplicate would show up now
        assert lifecycle() == WANTED
        ids = [e.id for e in received]
        assert len(ids) == len(set(ids))
        dhcp = [e.event_type for e in received if e.payload.get("device_owner") == "network:dhcp"]
        assert dhcp == ["network.port.create.end", "network.port.delete.end"], dhcp
    finally:
        await subscriber.stop()
        await broker.close()
