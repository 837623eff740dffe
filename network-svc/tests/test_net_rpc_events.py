"""The ``network`` RPC topic for compute, events per change, and the extension list."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from netapi_helpers import network_api

from common_rpc import Event, NotFound, RequestContext, RpcClient, use_context
from common_rpc.errors import Conflict, Invalid
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


class _RecordingAgent:
    """A fake network-agent on ``network.<host>``: answers ``wire_port`` and records what
    the API sends it (calls and casts alike), wiring nothing."""

    def __init__(self, runtime: Any, host: str) -> None:
        from common_rpc import RpcRouter, RpcServer

        self.wired: list[dict[str, Any]] = []
        self.members: list[dict[str, list[str]]] = []
        router = RpcRouter()
        agent = self

        @router.handler()
        async def wire_port(
            deps: Any,
            network: dict[str, Any],
            port: dict[str, Any],
            rules: list[dict[str, Any]],
            generation: int,
            remote_groups: dict[str, list[str]] | None = None,
        ) -> dict[str, Any]:
            agent.wired.append({"port": port, "rules": rules, "generation": generation})
            return {
                "port_id": port["port_id"],
                "observed_generation": generation,
                "applied": True,
                "bridge": "brq" + network["network_id"].replace("-", "")[:11],
                "mtu": network["mtu"],
                "mac": port["mac"],
                "device": "tap" + port["port_id"][:11],
            }

        @router.handler()
        async def sync_members(deps: Any, remote_groups: dict[str, list[str]]) -> None:
            agent.members.append(remote_groups)

        self.server = RpcServer(runtime.broker, f"network.{host}", None)
        self.server.include(router)


async def test_rpc_security_groups_for_compute(tmp_path) -> None:
    """compute finds a project's groups by name or id, and changes a port's groups: the
    port's host re-wires it and the hosts matching on its groups refill their sets."""
    async with network_api(tmp_path) as api:
        host = f"cn-{uuid.uuid4().hex[:8]}"
        agent = _RecordingAgent(api.app.state.runtime, host)
        await agent.server.start()
        try:
            await _security_group_calls(api, agent, host)
        finally:
            await agent.server.stop()


async def _group(api: Any, project: str, name: str) -> dict[str, Any]:
    resp = await api.post(project, "/v2.0/security-groups", {"security_group": {"name": name}})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["security_group"])


async def _security_group_calls(api: Any, agent: _RecordingAgent, host: str) -> None:
    web = await _group(api, "pA", "web")
    rule = {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22}  # fmt: skip
    resp = await api.post("pA", "/v2.0/security-group-rules", {"security_group_rule": rule})
    assert resp.status_code == 201, resp.text
    twins = [await _group(api, "pA", "twin") for _ in range(2)]
    theirs = await _group(api, "pB", "web")
    net = await api.network("pA")
    await api.subnet("pA", net["id"], "10.0.0.0/24")
    client = RpcClient(api.app.state.runtime.broker)

    async def call(project: str, method: str, **args: Any) -> Any:
        with use_context(RequestContext(project_id=project, roles=frozenset({"member"}))):
            return await client.call(api.topic, method, timeout=10, **args)

    # By name or id, in the order asked, each once; ``default`` made on first use.
    found = await call(
        "pA", "find_security_groups", names_or_ids=["web", twins[0]["id"], "default", "web"]
    )
    groups = found["security_groups"]
    assert [g["name"] for g in groups] == ["web", "twin", "default"]
    assert groups[0]["id"] == web["id"] and groups[1]["id"] == twins[0]["id"]
    assert sorted(str(r["port_range_min"]) for r in groups[0]["security_group_rules"]) == [
        "22",
        "None",
        "None",
    ]
    default = groups[2]["id"]
    # Another project's group is not found, by name (its own ``web``) or by id.
    with pytest.raises(NotFound) as missing:
        await call("pA", "find_security_groups", names_or_ids=[theirs["id"]])
    assert missing.value.details["name"] == theirs["id"]
    assert "not found for project pA" in missing.value.message
    mine = await call("pB", "find_security_groups", names_or_ids=["web"])
    assert [g["id"] for g in mine["security_groups"]] == [theirs["id"]]
    with pytest.raises(Conflict) as shared:
        await call("pA", "find_security_groups", names_or_ids=["twin"])
    assert shared.value.details["name"] == "twin"
    lenient = await call(
        "pA", "find_security_groups", names_or_ids=["nope", web["id"]], missing_ok=True
    )
    assert [g["id"] for g in lenient["security_groups"]] == [web["id"]]
    with pytest.raises(Invalid):
        await call("pA", "find_security_groups", names_or_ids="web")

    # A bound port gets a group and loses one; its host is told at once.
    port = await call("pA", "create_port", network_id=net["id"], device_id="vm1")
    assert port["security_groups"] == [default]
    bound = await call("pA", "update_port_binding", port_id=port["id"], host=host)
    assert bound["status"] == "ACTIVE", bound.get("binding:error")
    # Its binding told the host its group's members; the change below must tell it again.
    await wait_for(lambda: _has_members(agent, default), timeout=10)
    agent.wired.clear()
    agent.members.clear()
    added = await call("pA", "update_port_security_groups", port_id=port["id"], add=[web["id"]])
    assert sorted(added["security_groups"]) == sorted([default, web["id"]])
    assert added["added"] == [web["id"]] and added["removed"] == []

    async def rewired() -> bool:
        return any(
            w["port"]["port_id"] == port["id"]
            and any(r["port_range_min"] == 22 for r in w["rules"])
            for w in agent.wired
        )

    await wait_for(rewired, timeout=10)
    # The default group's rules match on itself: this host refills its member set.
    await wait_for(lambda: _has_members(agent, default), timeout=10)
    again = await call("pA", "update_port_security_groups", port_id=port["id"], add=[web["id"]])
    assert again["added"] == [] and sorted(again["security_groups"]) == sorted(
        added["security_groups"]
    )
    dropped = await call(
        "pA", "update_port_security_groups", port_id=port["id"], remove=[default, "absent"]
    )
    assert dropped["security_groups"] == [web["id"]]
    assert dropped["removed"] == [default] and dropped["added"] == []
    shown = (await api.get("pA", f"/v2.0/ports/{port['id']}")).json()["port"]
    assert shown["security_groups"] == [web["id"]]

    # Another project's group cannot go on the port; another project cannot touch it.
    with pytest.raises(NotFound):
        await call("pA", "update_port_security_groups", port_id=port["id"], add=[theirs["id"]])
    with pytest.raises(NotFound):
        await call("pB", "update_port_security_groups", port_id=port["id"], add=[theirs["id"]])
    # A port without port security takes no group (Nova's SecurityGroupCannotBeApplied).
    bare = await api.port("pA", net["id"], port_security_enabled=False)
    with pytest.raises(Conflict):
        await call("pA", "update_port_security_groups", port_id=bare["id"], add=[web["id"]])


async def _has_members(agent: _RecordingAgent, group: str) -> bool:
    return any(group in sets for sets in agent.members)
