"""os-interface with the real compute-agent on libvirt's test:///default hypervisor and a
real network-api (the network-agent is a fake): ports made on a network or given, bound
and hot-plugged into the domain's definition, listed, detached and released; refusals;
a hot-plug the host refuses leaves no port behind; the reconcile plugs back a NIC the
domain lost."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import libvirt
import pytest
from api_helpers import ADMIN, private_vhost
from test_api_agent_testdriver import _stack

from common_rpc import Event, EventSubscriber, RequestContext, RpcClient
from common_rpc.context import use_context
from common_rpc.contracts import validate_payload
from common_rpc.testing import wait_for
from compute_svc.drivers.base import NicSpec
from compute_svc.drivers.libvirt.driver import DetachPending

AGENT = RequestContext(user_id="compute-agent", roles=frozenset({"admin"}))


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture
async def lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[dict[str, Any]]:
    # Quick unplug retries: a guest that keeps a NIC fails its detach in about a second.
    quick = {"device_detach_attempts": 3, "device_detach_timeout": 0.2}
    async with AsyncExitStack() as stack:
        yield await _stack(tmp_path, amqp_url, stack, **quick)


async def _network(lab: dict[str, Any], project: str, name: str, cidr: str) -> dict[str, str]:
    network = lab["network"]
    net = (await network.post(project, "/v2.0/networks", {"network": {"name": name}})).json()
    body = {"subnet": {"network_id": net["network"]["id"], "cidr": cidr}}
    resp = await network.post(project, "/v2.0/subnets", body)
    assert resp.status_code == 201, resp.text
    return {"id": net["network"]["id"], "subnet_id": resp.json()["subnet"]["id"]}


async def _port(lab: dict[str, Any], project: str, network_id: str) -> dict[str, Any]:
    body = {"port": {"network_id": network_id, "name": "given"}}
    resp = await lab["network"].post(project, "/v2.0/ports", body)
    assert resp.status_code == 201, resp.text
    return resp.json()["port"]


async def _admin_port(lab: dict[str, Any], port_id: str) -> dict[str, Any] | None:
    resp = await lab["network"].get("admin", f"/v2.0/ports/{port_id}", *ADMIN)
    return resp.json()["port"] if resp.status_code == 200 else None


async def _boot(lab: dict[str, Any], name: str, networks: Any) -> str:
    api = lab["api"]
    flavor = await api.flavor(f"f-{name}", ram=128, vcpus=1, disk=1)
    kernel = await api.image("p1", b"vmlinuz", disk_format="aki", container_format="aki")
    body = {
        "server": {
            "name": name,
            "flavorRef": flavor["id"],
            "imageRef": kernel["id"],
            "networks": networks,
        }
    }
    resp = await api.post("p1", "/v2.1/servers", body)
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]

    async def settled() -> dict[str, Any] | None:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        return server if server["status"] in ("ACTIVE", "ERROR") else None

    server = await wait_for(settled, timeout=60)
    assert server["status"] == "ACTIVE", server.get("fault")
    return sid


def _definition(lab: dict[str, Any], sid: str) -> str:
    """The domain's persistent XML: what a restart or a rebuild of the guest gets."""
    driver = lab["agent"].host.driver
    dom = driver.conn().lookupByName(driver.domain_name(sid))
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


async def _server_ports(lab: dict[str, Any], sid: str) -> list[str]:
    """``openstack port list --server``: the ports whose device is the server."""
    resp = await lab["network"].get("p1", f"/v2.0/ports?device_id={sid}")
    return sorted(p["id"] for p in resp.json()["ports"])


async def _detached(lab: dict[str, Any], sid: str, port_id: str) -> None:
    """Until the server no longer has the port (the detach runs after its 202)."""
    from compute_svc.db.models import Server

    async def gone() -> bool:
        async with lab["api"].app.state.runtime.sessions() as session:
            server = await session.get(Server, sid)
            return server is not None and port_id not in {n["port_id"] for n in server.nics}

    await wait_for(gone, timeout=15)


async def test_attach_list_detach_and_reconcile(lab: dict[str, Any]) -> None:
    api, agent = lab["api"], lab["agent"]
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    patterns = ["compute.server.interface_attach.*", "compute.server.interface_detach.*"]
    subscriber = EventSubscriber(api.app.state.runtime.broker, "iface-watch", patterns, collect)
    await subscriber.start()
    try:
        net1 = await _network(lab, "p1", "n1", "10.31.0.0/24")
        net2 = await _network(lab, "p1", "n2", "10.32.0.0/24")
        sid = await _boot(lab, "iface", [{"uuid": net1["id"]}])
        path = f"/v2.1/servers/{sid}/os-interface"
        [boot_port] = await _server_ports(lab, sid)

        # By network, with an address: compute makes the port, binds it, plugs it.
        spec = {"net_id": net2["id"], "fixed_ips": [{"ip_address": "10.32.0.50"}]}
        resp = await api.post("p1", path, {"interfaceAttachment": spec})
        assert resp.status_code == 200, resp.text
        made = resp.json()["interfaceAttachment"]
        assert set(made) == {"port_id", "net_id", "mac_addr", "port_state", "fixed_ips"}
        assert made["net_id"] == net2["id"] and made["port_state"] == "ACTIVE"
        assert made["fixed_ips"] == [{"subnet_id": net2["subnet_id"], "ip_address": "10.32.0.50"}]
        assert made["mac_addr"].lower() in _definition(lab, sid)
        port = await _admin_port(lab, made["port_id"])
        assert port is not None and port["device_owner"] == "compute:nova"
        assert port["binding:host_id"] == lab["host"]
        assert await _server_ports(lab, sid) == sorted([boot_port, made["port_id"]])

        listed = (await api.get("p1", path)).json()["interfaceAttachments"]
        assert sorted(a["port_id"] for a in listed) == sorted([boot_port, made["port_id"]])
        shown = await api.get("p1", f"{path}/{made['port_id']}")
        assert shown.status_code == 200 and shown.json() == {"interfaceAttachment": made}
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        [address] = server["addresses"]["n2"]
        assert address["addr"] == "10.32.0.50"
        assert address["OS-EXT-IPS-MAC:mac_addr"] == made["mac_addr"]

        # A port the project made: claimed for the server, bound, plugged.
        given = await _port(lab, "p1", net2["id"])
        resp = await api.post("p1", path, {"interfaceAttachment": {"port_id": given["id"]}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["interfaceAttachment"]["mac_addr"] == given["mac_address"]
        port = await _admin_port(lab, given["id"])
        assert port is not None and port["device_id"] == sid and port["status"] == "ACTIVE"
        assert given["mac_address"].lower() in _definition(lab, sid)
        again = await api.post("p1", path, {"interfaceAttachment": {"port_id": given["id"]}})
        assert again.status_code == 409 and "conflictingRequest" in again.json()

        # The agent's list carries every NIC; a domain that lost one gets it back.
        with use_context(AGENT):
            rpc = RpcClient(api.app.state.runtime.broker)
            state = await rpc.call("compute", "host_state", host=lab["host"], timeout=10)
        [on_host] = state["servers"]
        nics = {n["port_id"]: n for n in on_host["nics"]}
        assert set(nics) == {boot_port, made["port_id"], given["id"]}
        agent.host.driver.detach_interface(sid, NicSpec.from_wire(nics[made["port_id"]]))
        assert made["mac_addr"].lower() not in _definition(lab, sid)
        agent.host.touched.clear()  # the commands are older than the round
        result = await agent.reconciler.run_once()
        assert result["restored_nics"] == [(sid, made["port_id"])]
        assert made["mac_addr"].lower() in _definition(lab, sid)
        assert (await agent.reconciler.run_once())["restored_nics"] == []

        # Detach the given port: unplugged, unbound, no device; the port stays.
        assert (await api.delete("p1", f"{path}/{given['id']}")).status_code == 202
        await _detached(lab, sid, given["id"])
        port = await _admin_port(lab, given["id"])
        assert port is not None and port["device_id"] == "" and port["binding:host_id"] == ""
        assert given["mac_address"].lower() not in _definition(lab, sid)

        async def unwired() -> bool:  # the old host was told to unwire it (a cast)
            return given["id"] in lab["net_agent"].unwired

        await wait_for(unwired, timeout=10)
        assert (await api.get("p1", f"{path}/{given['id']}")).status_code == 404
        assert (await api.delete("p1", f"{path}/{given['id']}")).status_code == 404

        # Detach the port compute made: it is deleted.
        assert (await api.delete("p1", f"{path}/{made['port_id']}")).status_code == 202
        await _detached(lab, sid, made["port_id"])
        assert await _admin_port(lab, made["port_id"]) is None
        assert made["mac_addr"].lower() not in _definition(lab, sid)
        listed = (await api.get("p1", path)).json()["interfaceAttachments"]
        assert [a["port_id"] for a in listed] == [boot_port]
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert list(server["addresses"]) == ["n1"]

        # Deleting the server gives an attached port back and deletes the ones it made.
        resp = await api.post("p1", path, {"interfaceAttachment": {"port_id": given["id"]}})
        assert resp.status_code == 200, resp.text
        assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

        async def gone() -> bool:
            return (await api.get("p1", f"/v2.1/servers/{sid}")).status_code == 404

        await wait_for(gone, timeout=30)
        port = await _admin_port(lab, given["id"])
        assert port is not None and port["device_id"] == "" and port["binding:host_id"] == ""
        assert await _server_ports(lab, sid) == []

        wanted = [
            ("interface_attach.start", made["port_id"]),
            ("interface_attach.end", made["port_id"]),
            ("interface_attach.start", given["id"]),
            ("interface_attach.end", given["id"]),
            ("interface_detach.start", given["id"]),
            ("interface_detach.end", given["id"]),
            ("interface_detach.start", made["port_id"]),
            ("interface_detach.end", made["port_id"]),
            ("interface_attach.start", given["id"]),
            ("interface_attach.end", given["id"]),
        ]

        async def all_seen() -> bool:
            return [
                (e.event_type.removeprefix("compute.server."), e.payload["port_id"]) for e in seen
            ] == wanted

        await wait_for(all_seen, timeout=15)
    finally:
        await subscriber.stop()
    for event in seen:
        payload = validate_payload(event.event_type, event.payload)
        assert payload.id == sid and payload.project_id == "p1"  # type: ignore[attr-defined]


async def test_refusals_and_a_refused_hot_plug_leave_nothing(lab: dict[str, Any]) -> None:
    api, driver = lab["api"], lab["agent"].host.driver
    net1 = await _network(lab, "p1", "n1", "10.41.0.0/24")
    net2 = await _network(lab, "p1", "n2", "10.42.0.0/24")
    first = await _boot(lab, "first", [{"uuid": net1["id"]}])
    second = await _boot(lab, "second", "none")
    path = f"/v2.1/servers/{second}/os-interface"
    [first_port] = await _server_ports(lab, first)

    # A port another server has: 409, as Nova answers.
    resp = await api.post("p1", path, {"interfaceAttachment": {"port_id": first_port}})
    assert resp.status_code == 409 and "conflictingRequest" in resp.json(), resp.text
    assert await _server_ports(lab, first) == [first_port]

    # Another project's server is not found; nor is its port, nor an unknown network.
    for method, suffix in (("GET", ""), ("POST", ""), ("GET", f"/{first_port}"),
                           ("DELETE", f"/{first_port}")):  # fmt: skip
        body = {"interfaceAttachment": {"net_id": net2["id"]}} if method == "POST" else None
        resp = await api.call(method, "p2", f"/v2.1/servers/{first}/os-interface{suffix}", body)
        assert resp.status_code == 404 and "itemNotFound" in resp.json(), (method, resp.text)
    foreign_net = await _network(lab, "p2", "theirs", "10.43.0.0/24")
    foreign = await _port(lab, "p2", foreign_net["id"])
    resp = await api.post("p1", path, {"interfaceAttachment": {"port_id": foreign["id"]}})
    assert resp.status_code == 404, resp.text
    assert (await _admin_port(lab, foreign["id"]) or {}).get("device_id") == ""
    resp = await api.post("p1", path, {"interfaceAttachment": {"net_id": foreign_net["id"]}})
    assert resp.status_code == 404, resp.text
    for bad in ({"net_id": net2["id"], "port_id": first_port}, {"net_id": "nope"}, {}):
        resp = await api.post("p1", path, {"interfaceAttachment": bad})
        assert resp.status_code == 400 and "badRequest" in resp.json(), (bad, resp.text)
    assert (await api.delete("p1", f"{path}/{first_port}")).status_code == 404

    # The host refuses the hot-plug (the domain is gone behind the agent's back): the port
    # compute made is deleted, the given one is given back, nothing is shown.
    dom = driver.conn().lookupByName(driver.domain_name(second))
    dom.destroy()
    dom.undefine()
    resp = await api.post("p1", path, {"interfaceAttachment": {"net_id": net2["id"]}})
    assert resp.status_code == 500 and "computeFault" in resp.json(), resp.text
    assert await _server_ports(lab, second) == []
    given = await _port(lab, "p1", net2["id"])
    resp = await api.post("p1", path, {"interfaceAttachment": {"port_id": given["id"]}})
    assert resp.status_code == 500, resp.text
    port = await _admin_port(lab, given["id"])
    assert port is not None and port["device_id"] == "" and port["binding:host_id"] == ""
    assert (await api.get("p1", path)).json() == {"interfaceAttachments": []}
    server = (await api.get("p1", f"/v2.1/servers/{second}")).json()["server"]
    assert server["addresses"] == {}

    # The given port was let go: a stopped server may have it (plugged at its next start).
    await api.post("p1", f"/v2.1/servers/{first}/action", {"os-stop": None})

    async def stopped() -> bool:
        server = (await api.get("p1", f"/v2.1/servers/{first}")).json()["server"]
        return server["status"] == "SHUTOFF"

    await wait_for(stopped, timeout=30)
    body = {"interfaceAttachment": {"port_id": given["id"]}}
    resp = await api.post("p1", f"/v2.1/servers/{first}/os-interface", body)
    assert resp.status_code == 200, resp.text
    assert given["mac_address"].lower() in _definition(lab, first)

    for sid in (first, second):
        assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def all_gone() -> bool:
        resp = await api.get("p1", "/v2.1/servers")
        return resp.json()["servers"] == []

    await wait_for(all_gone, timeout=30)


async def test_a_nic_the_guest_keeps_stays_attached_with_the_fault(
    lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detach answers 202; the agent asks the guest every time the settings say, then
    puts the NIC back in the definition; compute shows it attached again, the port is
    still the server's, and the fault is the action's. Once the guest lets go, it goes."""
    api, agent = lab["api"], lab["agent"]
    driver = agent.host.driver
    net1 = await _network(lab, "p1", "n1", "10.51.0.0/24")
    net2 = await _network(lab, "p1", "n2", "10.52.0.0/24")
    sid = await _boot(lab, "keeps", [{"uuid": net1["id"]}])
    path = f"/v2.1/servers/{sid}/os-interface"
    resp = await api.post("p1", path, {"interfaceAttachment": {"net_id": net2["id"]}})
    assert resp.status_code == 200, resp.text
    made = resp.json()["interfaceAttachment"]
    asked: list[str] = []

    def keeps_it(server_id: str, nic: NicSpec, timeout: float | None = None) -> None:
        # Stands in for a guest that never answers the unplug request.
        asked.append(nic.port_id)
        time.sleep(timeout or 0.0)
        raise DetachPending(f"the guest has not released the NIC {nic.mac} yet")

    monkeypatch.setattr(driver, "detach_interface", keeps_it)
    resp = await api.delete("p1", f"{path}/{made['port_id']}")
    assert resp.status_code == 202, resp.text
    hidden = (await api.get("p1", path)).json()["interfaceAttachments"]
    assert made["port_id"] not in {a["port_id"] for a in hidden}  # detaching: not shown
    again = await api.delete("p1", f"{path}/{made['port_id']}")
    assert again.status_code == 409, again.text
    request_id = resp.headers["x-openstack-request-id"]

    async def failed() -> dict[str, Any] | None:
        shown = await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions/{request_id}")
        action = shown.json()["instanceAction"]
        return action if action["events"][0]["result"] else None

    action = await wait_for(failed, timeout=20)
    assert asked == [made["port_id"]] * 3
    assert action["action"] == "detach_interface"
    assert action["events"][0]["event"] == "compute_detach_interface"
    assert action["events"][0]["result"] == "Error"
    assert action["message"] == (
        f"Failed to detach network adapter device from {sid}: Device detach failed for "
        f"port {made['port_id']}: the guest still holds it after 3 unplug requests."
    )
    listed = (await api.get("p1", path)).json()["interfaceAttachments"]
    assert made["port_id"] in {a["port_id"] for a in listed}
    port = await _admin_port(lab, made["port_id"])
    assert port is not None and port["device_id"] == sid
    assert made["mac_addr"].lower() in _definition(lab, sid)

    monkeypatch.undo()
    resp = await api.delete("p1", f"{path}/{made['port_id']}")
    assert resp.status_code == 202, resp.text
    await _detached(lab, sid, made["port_id"])
    assert await _admin_port(lab, made["port_id"]) is None
    assert made["mac_addr"].lower() not in _definition(lab, sid)
    actions = (await api.get("p1", f"/v2.1/servers/{sid}/os-instance-actions")).json()
    assert [a["action"] for a in actions["instanceActions"]] == [
        "detach_interface",
        "detach_interface",
        "attach_interface",
        "create",
    ]
    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
