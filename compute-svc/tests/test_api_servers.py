"""Servers end to end over RPC: compute-api and a real network-api on RabbitMQ, with fake
agents on the host (no guest runs here; the libvirt tests boot real ones)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, private_vhost

from common_rpc import RequestContext, RpcClient
from common_rpc.context import use_context


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _basics(c: Cloud, project: str = "p1") -> dict[str, Any]:
    flavor = await c.api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    image = await c.api.image(project, b"QFI\xfb" + b"\0" * 1000)
    out = {"flavor": flavor, "image": image}
    if c.network is not None:
        resp = await c.network.post(project, "/v2.0/networks", {"network": {"name": "net1"}})
        assert resp.status_code == 201, resp.text
        net = resp.json()["network"]
        body = {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}
        resp = await c.network.post(project, "/v2.0/subnets", body)
        assert resp.status_code == 201, resp.text
        out["network"] = net
    return out


def _server(base: dict[str, Any], label: str, **extra: Any) -> dict[str, Any]:
    body = {
        "name": label,
        "flavorRef": base["flavor"]["id"],
        "imageRef": base["image"]["id"],
        "min_count": 1,
        "max_count": 1,
    }
    if "network" in base:
        body["networks"] = [{"uuid": base["network"]["id"]}]
    return {"server": body | extra}


async def test_boot_show_act_and_delete(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        key = await c.api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "k1"}})
        script = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
        body = _server(base, "web 1", key_name="k1", user_data=script, metadata={"a": "b"})
        resp = await c.api.post("p1", "/v2.1/servers", body)
        assert resp.status_code == 202, resp.text
        created = resp.json()["server"]
        assert set(created) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
        assert resp.headers["location"].endswith(f"/v2.1/servers/{created['id']}")
        sid = created["id"]

        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        assert server["OS-EXT-STS:vm_state"] == "active"
        assert server["OS-EXT-STS:power_state"] == 1
        assert server["OS-EXT-STS:task_state"] is None
        assert "OS-EXT-SRV-ATTR:host" not in server and "fault" not in server
        [(net_key, [address])] = server["addresses"].items()
        assert address["addr"].startswith("10.9.0.") and address["version"] == 4
        assert address["OS-EXT-IPS:type"] == "fixed"

        # What the agent was told: the contract of the desired state.
        desired = c.agent.spawned[sid]
        assert desired["generation"] == 1 and desired["vcpus"] == 1 and desired["ram_mb"] == 128
        assert desired["image"]["disk_format"] == "qcow2"
        assert open(desired["image"]["path"], "rb").read(4) == b"QFI\xfb"  # noqa: ASYNC230
        [nic] = desired["nics"]
        assert nic["mac"] == address["OS-EXT-IPS-MAC:mac_addr"]
        assert nic["bridge"].startswith("brq") and nic["mtu"] == base["network"]["mtu"]
        drive = desired["config_drive"]
        assert drive["user_data"] == script
        assert drive["meta_data"]["uuid"] == sid and drive["meta_data"]["hostname"] == "web-1"
        assert drive["meta_data"]["public_keys"] == {"k1": key.json()["keypair"]["public_key"]}
        assert drive["meta_data"]["meta"] == {"a": "b"}
        assert drive["network_data"]["links"][0]["ethernet_mac_address"] == nic["mac"]
        assert desired["volumes"] == []

        # network-svc holds the port for this server, bound to the host.
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        [port] = [p for p in ports if p["device_id"] == sid]
        assert port["device_owner"] == "compute:nova"
        assert port["binding:host_id"] == c.host and port["status"] == "ACTIVE"
        assert net_key in ("net1", base["network"]["id"])

        admin_view = (await c.api.get("p1", f"/v2.1/servers/{sid}", *ADMIN)).json()["server"]
        assert admin_view["OS-EXT-SRV-ATTR:host"] == c.host
        assert (await c.api.get("p2", f"/v2.1/servers/{sid}")).status_code == 404

        # One metadata item at a time (Nova's server-metadata item routes).
        item = f"/v2.1/servers/{sid}/metadata"
        assert (await c.api.get("p1", f"{item}/a")).json() == {"meta": {"a": "b"}}
        resp = await c.api.put("p1", f"{item}/c", {"meta": {"c": "d"}})
        assert resp.status_code == 200 and resp.json() == {"meta": {"c": "d"}}, resp.text
        for bad, why in (
            ({"meta": {"x": "y"}}, "Request body and URI mismatch"),
            ({"meta": {"c": "d", "e": "f"}}, "Request body contains too many items"),
        ):
            resp = await c.api.put("p1", f"{item}/c", bad)
            assert resp.status_code == 400 and why in resp.text, resp.text
        assert (await c.api.delete("p1", f"{item}/a")).status_code == 204
        assert (await c.api.get("p1", item)).json() == {"metadata": {"c": "d"}}
        missing = await c.api.get("p1", f"{item}/a")
        assert missing.status_code == 404 and "Metadata item was not found" in missing.text
        assert (await c.api.delete("p1", f"{item}/a")).status_code == 404
        assert (await c.api.get("p2", f"{item}/c")).status_code == 404
        listed = (await c.api.get("p1", "/v2.1/servers")).json()["servers"]
        assert [s["id"] for s in listed] == [sid] and set(listed[0]) == {"id", "name", "links"}
        assert (await c.api.get("p2", "/v2.1/servers/detail")).json()["servers"] == []
        ips = (await c.api.get("p1", f"/v2.1/servers/{sid}/ips")).json()["addresses"]
        assert ips[net_key] == [{"addr": address["addr"], "version": 4}]

        # The agent's reconcile view of its host.
        agent_ctx = RequestContext(user_id="compute-agent", roles=frozenset({"admin"}))
        rpc = RpcClient(c.api.app.state.runtime.broker)
        with use_context(agent_ctx):
            on_host = await rpc.call("compute", "host_state", host=c.host, timeout=10)
        assert on_host == {
            "host": c.host,
            "servers": [
                {"server_id": sid, "generation": 1, "power_state": "running", "nics": [nic]}
            ],
        }

        # Update, power actions, console.
        renamed = await c.api.put("p1", f"/v2.1/servers/{sid}", {"server": {"name": "web-2"}})
        assert renamed.status_code == 200 and renamed.json()["server"]["name"] == "web-2"
        assert "OS-EXT-STS:vm_state" not in renamed.json()["server"]
        action = f"/v2.1/servers/{sid}/action"
        assert (await c.api.post("p1", action, {"os-start": None})).status_code == 409
        assert (await c.api.post("p1", action, {"os-stop": None})).status_code == 202
        stopped = await c.wait_status("p1", sid, "SHUTOFF")
        assert stopped["OS-EXT-STS:power_state"] == 4
        assert (await c.api.post("p1", action, {"os-start": None})).status_code == 202
        await c.wait_status("p1", sid, "ACTIVE")
        resp = await c.api.post("p1", action, {"reboot": {"type": "HARD"}})
        assert resp.status_code == 202
        await c.wait_status("p1", sid, "ACTIVE")
        assert [a for a, _ in c.agent.power] == ["stop", "start", "reboot"]
        console = await c.api.post("p1", action, {"os-getConsoleOutput": {"length": 2}})
        assert console.json()["output"].splitlines() == [f"line 8 of {sid}", f"line 9 of {sid}"]
        assert (await c.api.post("p1", action, {"os-shelve": None})).status_code == 400

        # Delete converges: guest destroyed, port deleted, capacity given back.
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)
        assert sid in c.agent.destroyed
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        assert [p for p in ports if p["device_id"] == sid] == []
        hyper = await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)
        [row] = hyper.json()["hypervisors"]
        assert row["vcpus_used"] == 0 and row["memory_mb_used"] == 0 and row["state"] == "up"


async def test_failed_spawn_releases_everything(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        c.agent.fail_names.add("doomed")
        resp = await c.api.post("p1", "/v2.1/servers", _server(base, "doomed"))
        sid = resp.json()["server"]["id"]
        server = await c.wait_status("p1", sid, "ERROR")
        assert server["fault"]["code"] == 500 and "qemu refused" in server["fault"]["message"]
        assert set(server["fault"]) == {"code", "message", "created"}
        assert server["OS-EXT-STS:vm_state"] == "error"
        assert sid in c.agent.destroyed and sid not in c.agent.spawned
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        assert [p for p in ports if p["device_id"] == sid] == []
        hyper = (await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
        assert hyper["hypervisors"][0]["vcpus_used"] == 0
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)


async def test_delete_releases_a_port_whose_create_reply_was_lost(
    tmp_path: Path, amqp_url: str
) -> None:
    """network-api slow past the deadline still makes the port (device_id = the server)."""
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        sid = (await c.api.post("p1", "/v2.1/servers", _server(base, "vm"))).json()["server"]["id"]
        await c.wait_status("p1", sid, "ACTIVE")
        stray = {"network_id": base["network"]["id"], "device_id": sid}
        resp = await c.network.post("p1", "/v2.0/ports", {"port": stray})
        assert resp.status_code == 201, resp.text
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)
        ports = (await c.network.get("p1", "/v2.0/ports")).json()["ports"]
        assert [p["id"] for p in ports if p["device_id"] == sid] == []


async def test_network_service_down_ends_in_error(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False, rpc_timeout_s=1.0) as c:
        base = await _basics(c)
        body = _server(base, "lonely", networks=[{"uuid": "5f0c7b6e-5b43-4d7e-9f55-0d1d6b9d1a11"}])
        sid = (await c.api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]
        server = await c.wait_status("p1", sid, "ERROR")
        assert server["fault"]["message"].startswith("Build timed out")
        assert c.agent.spawned == {}
        hyper = (await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()
        assert hyper["hypervisors"][0]["vcpus_used"] == 0


async def test_create_validation(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        base = await _basics(c)
        bad = [
            {"flavorRef": "nope"},
            {"imageRef": "2b6a1c6e-0000-4000-8000-000000000000"},
            {"user_data": "%%%not-base64"},
            {"networks": [{"uuid": "not-a-uuid"}]},
            {"networks": "some"},
            {"min_count": 3, "max_count": 2},
            {"min_count": 0},
            {"key_name": "missing"},
            {"metadata": {"k": 1}},
            {"name": ""},
            {"block_device_mapping_v2": [{"boot_index": 0, "uuid": "x", "source_type": "volume"}]},
        ]
        for extra in bad:
            resp = await c.api.post("p1", "/v2.1/servers", _server(base, "x", **extra))
            assert resp.status_code == 400, (extra, resp.text)
            assert "badRequest" in resp.json()
        assert (await c.api.post("p1", "/v2.1/servers", {"nope": {}})).status_code == 400
        assert (await c.api.get("p1", "/v2.1/servers/unknown")).status_code == 404
        assert (await c.api.delete("p1", "/v2.1/servers/unknown")).status_code == 404
        # The image BDM OSC sends next to imageRef is a plain image boot.
        bdm = [{"uuid": base["image"]["id"], "boot_index": 0, "source_type": "image",
                "destination_type": "local", "delete_on_termination": True}]  # fmt: skip
        ok = await c.api.post(
            "p1", "/v2.1/servers", _server(base, "bdm", block_device_mapping_v2=bdm)
        )
        assert ok.status_code == 202, ok.text
        await c.wait_status("p1", ok.json()["server"]["id"], "ACTIVE")

        # Several at once (min_count/max_count): <name>-<n>, each booted on its own.
        many = await c.api.post(
            "p1", "/v2.1/servers", _server(base, "many", min_count=2, max_count=2)
        )
        assert many.status_code == 202, many.text
        listed = (await c.api.get("p1", "/v2.1/servers?name=many")).json()["servers"]
        assert sorted(s["name"] for s in listed) == ["many-1", "many-2"]
        assert many.json()["server"]["id"] in {s["id"] for s in listed}
        for s in listed:
            await c.wait_status("p1", s["id"], "ACTIVE")


async def test_idempotency_key_yields_one_server(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        base = await _basics(c)
        headers = {"Idempotency-Key": "boot-42"}
        body = _server(base, "once")
        first = await c.api.post("p1", "/v2.1/servers", body, headers=headers)
        again = await c.api.post("p1", "/v2.1/servers", body, headers=headers)
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        assert again.headers.get("idempotent-replayed") == "true"
        listed = (await c.api.get("p1", "/v2.1/servers")).json()["servers"]
        assert len(listed) == 1
        await c.wait_status("p1", listed[0]["id"], "ACTIVE")


async def test_boot_on_a_given_port_keeps_it(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        body = {"port": {"network_id": base["network"]["id"], "name": "mine"}}
        port = (await c.network.post("p1", "/v2.0/ports", body)).json()["port"]
        request = _server(base, "on-port", networks=[{"port": port["id"]}])
        sid = (await c.api.post("p1", "/v2.1/servers", request)).json()["server"]["id"]
        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        [[address]] = server["addresses"].values()
        assert address["addr"] == port["fixed_ips"][0]["ip_address"]
        assert c.agent.spawned[sid]["nics"][0]["port_id"] == port["id"]

        # One server at a time holds a port.
        other = _server(base, "thief", networks=[{"port": port["id"]}])
        taken = await c.api.post("p1", "/v2.1/servers", other)
        assert taken.status_code == 409 and "conflictingRequest" in taken.json()
        # Another project does not see it at all.
        theirs = await c.api.post("p2", "/v2.1/servers", other)
        assert theirs.status_code == 400 and "could not be found" in theirs.text

        await c.api.delete("p1", f"/v2.1/servers/{sid}")
        await c.wait_gone("p1", sid)
        kept = await c.network.get("p1", f"/v2.0/ports/{port['id']}")
        assert kept.status_code == 200


async def test_two_networks_and_a_fixed_ip(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        resp = await c.network.post("p1", "/v2.0/networks", {"network": {"name": "net2"}})
        net2 = resp.json()["network"]
        body = {"subnet": {"network_id": net2["id"], "cidr": "10.10.0.0/24", "ip_version": 4}}
        assert (await c.network.post("p1", "/v2.0/subnets", body)).status_code == 201
        networks = [{"uuid": base["network"]["id"]}, {"uuid": net2["id"], "fixed_ip": "10.10.0.42"}]
        request = _server(base, "two-nics", networks=networks)
        sid = (await c.api.post("p1", "/v2.1/servers", request)).json()["server"]["id"]
        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        addrs = sorted(a["addr"] for entries in server["addresses"].values() for a in entries)
        assert len(addrs) == 2 and "10.10.0.42" in addrs
        desired = c.agent.spawned[sid]
        assert len(desired["nics"]) == 2
        assert [n["id"] for n in desired["config_drive"]["network_data"]["networks"]] == [
            "network0",
            "network1",
        ]

        # The same address again cannot be had: that boot fails and keeps no port.
        clash = _server(base, "clash", networks=[{"uuid": net2["id"], "fixed_ip": "10.10.0.42"}])
        other = (await c.api.post("p1", "/v2.1/servers", clash)).json()["server"]["id"]
        failed = await c.wait_status("p1", other, "ERROR")
        assert failed["fault"]["code"] == 409
        await c.api.delete("p1", f"/v2.1/servers/{sid}")
        await c.api.delete("p1", f"/v2.1/servers/{other}")
        await c.wait_gone("p1", sid)
        await c.wait_gone("p1", other)
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        assert [p for p in ports if p["device_owner"] == "compute:nova"] == []
