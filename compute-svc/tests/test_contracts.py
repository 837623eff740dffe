"""Both sides of compute's RPC against one set of models.

The API's router serves exactly ``contracts.API`` (what the agents and operators call on
``compute``), the agent's exactly ``contracts.AGENT`` (the commands on ``compute.<host>``),
each method with the contract's typed ``Method``; every request and reply model survives
its wire form; and what the other side sends today (a spawn payload as the tests' fixture
builds it, the volume service's connection info) fits the models.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from virt_fixtures import server

from common_rpc.audit import AuditReport, Finding
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.contracts import volume as cv
from common_rpc.methods import Contract, Empty, Method
from compute_svc import contracts as cc
from compute_svc.agent.handlers import rpc as agent_rpc
from compute_svc.rpc.handlers import rpc as api_rpc

NIC = cc.Nic(port_id="p1", mac="fa:16:3e:00:00:01", bridge="brq1", mtu=1450)
CONNECTION = cc.VolumeConnection(
    data=cc.IscsiTarget(
        target_iqn="iqn.2010-10.org.stackling:volume-v1",
        target_portal="[2001:db8::5]:3260",
        target_lun=1,
        auth_username="vol-v1",
        auth_password="s3cr3t",
    )
)
STATE = cc.ServerState(
    server_id="s1",
    name="web-1",
    generation=3,
    vcpus=1,
    ram_mb=128,
    disk_gb=1,
    image=cc.ImageRef(id="i1", disk_format="aki-ari", path="/img/k", kernel_path="/img/k"),
    nics=[NIC],
    config_drive=cc.ConfigDrive(
        meta_data={"uuid": "s1", "public_keys": {"k1": "ssh-ed25519 AAAA"}},
        network_data={"links": [], "networks": [], "services": []},
        user_data="ZWNobyBoaQ==",
    ),
    volumes=[cc.AttachedVolume(volume_id="v1", device="/dev/vdb", connection=CONNECTION)],
)
UNPLUG = {"attempts": 8, "wait_s": 20.0, "until": 1_800_000_000.5}

# One sample of every model either contract carries (a new model needs one here).
SAMPLES: dict[type[BaseModel], BaseModel] = {
    Empty: Empty(),
    HostStateRequest: HostStateRequest(host="cn1"),
    cc.HostState: cc.HostState(
        host="cn1",
        servers=[
            cc.DesiredServer(server_id="s1", generation=3, power_state="running", nics=[NIC]),
            cc.DesiredServer(server_id="s2", generation=1),
        ],
    ),
    cc.PowerStateChanged: cc.PowerStateChanged(server_id="s1", power_state="shutdown"),
    cc.ServerStatus: cc.ServerStatus(server_id="s1", status="SHUTOFF"),
    cc.Peers: cc.Peers(
        network=cc.PeerStatus(ok=True, service="network", host="api1", pid=7, uptime_s=1.5),
        volume=cc.PeerStatus(ok=False, error="timeout", message="volume.ping: no reply"),
    ),
    AuditReport: AuditReport(
        service="compute",
        checked={"servers": 2},
        findings=[Finding(kind="orphan", resource="domain", id="s9", host="cn1")],
    ),
    cc.Spawn: cc.Spawn(server=STATE),
    cc.Resize: cc.Resize(server=STATE, running=False),
    cc.FinishResize: cc.FinishResize(server_id="s1", revert=True, running=True),
    cc.Snapshot: cc.Snapshot(server_id="s1", target="/var/lib/stackling/images/.x.snapshot"),
    cc.Spawned: cc.Spawned(
        server_id="s1", domain="stackling-s1", power_state="running", observed_generation=3
    ),
    cc.ServerRef: cc.ServerRef(server_id="s1"),
    cc.Destroyed: cc.Destroyed(server_id="s1"),
    cc.Power: cc.Power(server_id="s1", action="reboot"),
    cc.DomainState: cc.DomainState(server_id="s1", domain="stackling-s1", power_state="shutdown"),
    cc.ConsoleRequest: cc.ConsoleRequest(server_id="s1", length=10),
    cc.ConsoleOutput: cc.ConsoleOutput(output="login:"),
    cc.AttachVolume: cc.AttachVolume(server_id="s1", volume_id="v1", connection=CONNECTION),
    cc.VolumeAttached: cc.VolumeAttached(server_id="s1", volume_id="v1", device="vdb"),
    cc.DetachVolume: cc.DetachVolume(server_id="s1", volume_id="v1", **UNPLUG),
    cc.VolumeDetached: cc.VolumeDetached(server_id="s1", volume_id="v1", attempts=2),
    cc.AttachInterface: cc.AttachInterface(server_id="s1", nic=NIC),
    cc.InterfaceAttached: cc.InterfaceAttached(server_id="s1", port_id="p1", attached=True),
    cc.DetachInterface: cc.DetachInterface(server_id="s1", nic=NIC, **UNPLUG),
    cc.InterfaceDetached: cc.InterfaceDetached(server_id="s1", port_id="p1", attempts=1),
    cc.Inventory: cc.Inventory(
        host="cn1",
        domains=[cc.DomainPower(server_id="s1", power_state="running")],
        capacity=cc.Capacity(vcpus=4, ram_mb=4096, disk_gb=40),
    ),
}

ALL_METHODS = [*cc.API.methods, *cc.AGENT.methods]


def test_the_api_and_the_agent_serve_exactly_their_contracts() -> None:
    assert api_rpc.check(cc.API) == []
    assert agent_rpc.check(cc.AGENT) == []
    # The reconcile asks the one name every service answers.
    assert cc.HOST_STATE.name == "host_state" and "host_servers" not in cc.API.names
    assert cc.AGENT.names == {
        "spawn", "destroy", "power", "console_output", "attach_volume", "detach_volume",
        "attach_interface", "detach_interface", "inventory", "resize", "finish_resize", "rebuild",
        "snapshot", "shelve_offload",
    }  # fmt: skip


def test_a_router_off_its_contract_is_reported() -> None:
    """The check above can fail: a missing and an extra method are both named."""
    assert agent_rpc.check(cc.API) != []
    shrunk = Contract("compute.<host>", cc.AGENT.methods[1:])
    assert agent_rpc.check(shrunk) == ["spawn: served, not in the contract"]
    grown = Contract("compute", [*cc.API.methods, cc.SPAWN])
    assert api_rpc.check(grown) == ["spawn: in the contract, not served"]


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.name)
def test_every_request_and_reply_survives_its_wire_form(method: Method[Any, Any]) -> None:
    request, reply = SAMPLES[method.request], SAMPLES[method.reply]
    assert method.request.model_validate(method.arguments(request)) == request
    assert method.parse_reply(reply.model_dump(mode="json")) == reply


def test_what_the_senders_send_today_fits_the_models() -> None:
    """A spawn payload as built before the models (no ``device`` on a NIC, a null MTU),
    the volume service's connection info, and a NIC missing its bridge refused."""
    payload = server({"id": "i1", "disk_format": "qcow2", "path": "/img/i1"}, user_data=b"hi")
    payload["nics"] = [{"port_id": "p1", "mac": "fa:16:3e:00:00:01", "bridge": "brq1", "mtu": None}]
    state = cc.Spawn.model_validate({"server": payload}).server
    assert state.nics[0].mtu == 1500 and state.nics[0].device == ""
    assert state.config_drive is not None and state.config_drive.user_data == "aGk="
    info = cv.ConnectionInfo(
        data=cv.IscsiConnectionData(
            target_iqn="iqn.x:volume-v1",
            target_portal="10.0.0.5:3260",
            target_lun=1,
            volume_id="v1",
            auth_username="vol-v1",
            auth_password="s3cr3t",
        )
    )
    connection = cc.VolumeConnection.of(info)
    assert connection.data.auth_password == "s3cr3t" and connection.data.target_lun == 1
    # What an attachment keeps (the answer with the connector beside) reads back the same.
    kept = info.model_dump(mode="json") | {"connector": {"initiator": "iqn.x:cn1"}}
    assert cc.VolumeConnection.model_validate(kept) == connection
    with pytest.raises(ValidationError):
        cc.AttachInterface.model_validate({"server_id": "s1", "nic": {"port_id": "p2"}})
    with pytest.raises(ValidationError):
        cc.PowerStateChanged.model_validate({"server_id": "s1", "power_state": "on fire"})
