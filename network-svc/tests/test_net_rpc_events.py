"""The ``network`` RPC topic for compute, events per change, and the extension list."""

from __future__ import annotations

import uuid

import pytest
from netapi_helpers import network_api

from common_rpc import Event, NotFound, RequestContext, RpcClient, use_context
from common_rpc.testing import wait_for


async def test_rpc_port_lifecycle_for_compute(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        net = await api.network("pA")
        await api.subnet("pA", net["id"], "10.0.0.0/24")
        client = RpcClient(api.app.state.runtime.broker)
        with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
            port = await client.call(
                api.topic,
                "create_port",
                network_id=net["id"],
                device_id="vm1",
                device_owner="compute:nova",
                timeout=10,
            )
            assert port["device_id"] == "vm1" and port["fixed_ips"]
            got = await client.call(api.topic, "get_port", port_id=port["id"], timeout=10)
            assert got["mac_address"] == port["mac_address"]
            bound = await client.call(
                api.topic, "update_port_binding", port_id=port["id"], host="cn1", timeout=10
            )
            assert bound["status"] == "DOWN" and bound["binding:host_id"] == "cn1"
            assert bound["bridge"] == "brq" + net["id"].replace("-", "")[:11]
            assert port["network_name"] == got["network_name"] == bound["network_name"] == "n"
            # A given port is claimed by a server, then given back unbound.
            claimed = await client.call(
                api.topic, "update_port", port_id=port["id"], device_id="vm2", timeout=10
            )
            assert claimed["device_id"] == "vm2" and claimed["network_name"] == "n"
            freed = await client.call(
                api.topic, "update_port", port_id=port["id"], unbind=True, timeout=10
            )
            assert freed["status"] == "DOWN"
            shown = await api.get("pA", f"/v2.0/ports/{port['id']}", "admin")
            assert shown.json()["port"]["binding:host_id"] == ""
            # A server's cleanup: all its ports by device id, and again (idempotent).
            extra = await client.call(
                api.topic, "create_port", network_id=net["id"], device_id="vm2", timeout=10
            )
            swept = await client.call(api.topic, "delete_ports", device_id="vm2", timeout=10)
            assert sorted(swept["deleted"]) == sorted([port["id"], extra["id"]])
            again = await client.call(api.topic, "delete_ports", device_id="vm2", timeout=10)
            assert again["deleted"] == []
            port = await client.call(
                api.topic, "create_port", network_id=net["id"], device_id="vm1", timeout=10
            )
        with use_context(RequestContext(project_id="pB", roles=frozenset({"member"}))):
            with pytest.raises(NotFound):
                await client.call(api.topic, "get_port", port_id=port["id"], timeout=10)
        with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
            done = await client.call(api.topic, "delete_port", port_id=port["id"], timeout=10)
            assert done == {"id": port["id"], "deleted": True}
            again = await client.call(api.topic, "delete_port", port_id=port["id"], timeout=10)
            assert again["deleted"] is False
        admin = (await api.get("x", f"/v2.0/ports/{port['id']}", "admin")).status_code
        assert admin == 404


async def test_every_change_emits_an_event(tmp_path) -> None:
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    async with network_api(tmp_path) as api:
        # Subscribing after start: the runtime starts subscribers it is given at start only.
        subscriber = api.app.state.runtime.subscribe(
            f"nettest{uuid.uuid4().hex[:8]}", ["network.#"], record
        )
        await subscriber.start()
        try:
            net = await api.network("pA")
            sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
            port = await api.port("pA", net["id"])
            await api.put("pA", f"/v2.0/ports/{port['id']}", {"port": {"name": "x"}})
            await api.delete("pA", f"/v2.0/ports/{port['id']}")
            await api.delete("pA", f"/v2.0/subnets/{sub['id']}")
            await api.put("pA", f"/v2.0/networks/{net['id']}", {"network": {"name": "y"}})
            await api.delete("pA", f"/v2.0/networks/{net['id']}")
            expected = {
                "network.network.create.end",
                "network.network.update.end",
                "network.network.delete.end",
                "network.subnet.create.end",
                "network.subnet.delete.end",
                "network.security_group.create.end",
                "network.port.create.end",
                "network.port.update.end",
                "network.port.delete.end",
            }

            async def all_seen() -> bool:
                return expected <= {e.event_type for e in seen}

            await wait_for(all_seen, timeout=10)
            created = next(
                e
                for e in seen
                if e.event_type == "network.port.create.end" and e.payload["id"] == port["id"]
            )
            assert created.project_id == "pA" and created.payload["id"] == port["id"]
        finally:
            await subscriber.stop()


async def test_extensions_are_listed_and_shown(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        listed = (await api.get("pA", "/v2.0/extensions")).json()["extensions"]
        aliases = {e["alias"] for e in listed}
        assert {"security-group", "port-security", "binding", "provider", "net-mtu"} <= aliases
        shown = await api.get("pA", "/v2.0/extensions/security-group")
        assert shown.json()["extension"]["alias"] == "security-group"
        missing = await api.get("pA", "/v2.0/extensions/tag-ports-during-bulk-creation")
        assert missing.status_code == 404
