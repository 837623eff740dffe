"""Both sides of network's RPC against one contract: the API's ``network`` topic and the
agent's ``network.<host>`` serve exactly their contract's methods, typed, and every
request and reply model survives its wire form (JSON, Neutron's attribute names kept)."""

from __future__ import annotations

from typing import Any

import pytest

from common_rpc.audit import AuditReport
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.contracts import network as net
from common_rpc.methods import Empty, Message, Method
from network_svc import contracts
from network_svc.agent.handlers import rpc as agent_rpc
from network_svc.rpc.handlers import rpc as api_rpc

NETWORK_STATE = contracts.NetworkState(
    network_id="n1",
    segmentation_type="vxlan",
    segmentation_id=1001,
    mtu=1450,
    subnets=[
        contracts.SubnetState(
            subnet_id="s1",
            cidr="10.0.0.0/24",
            gateway_ip="10.0.0.1",
            dns_nameservers=["10.0.0.2"],
            host_routes=[contracts.HostRoute(destination="10.9.0.0/16", nexthop="10.0.0.254")],
            dhcp_server_ip="10.0.0.2",
        )
    ],
    dhcp_hosts=[contracts.DhcpHost(mac="fa:16:3e:00:00:01", ip="10.0.0.5", hostname="host-5")],
    generation=3,
)
PORT_STATE = contracts.PortState(
    network=NETWORK_STATE,
    port=contracts.PortInfo(
        port_id="p1", network_id="n1", mac="fa:16:3e:00:00:01", fixed_ips=["10.0.0.5"]
    ),
    rules=[
        contracts.Rule(direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22),
        contracts.Rule(direction="ingress", remote_group_id="g1"),
    ],
    remote_groups={"g1": ["10.0.0.5", "10.0.0.6"]},
    generation=7,
)
ROUTER_STATE = contracts.RouterState(
    router_id="r1",
    generation=4,
    gateway=contracts.RouterGateway(
        port_id="pg",
        network_id="ext",
        mac="fa:16:3e:00:00:09",
        cidrs=["203.0.113.5/24"],
        next_hop="203.0.113.1",
    ),
    interfaces=[
        contracts.RouterInterface(
            port_id="pi",
            network_id="n1",
            subnet_id="s1",
            mac="fa:16:3e:00:00:02",
            cidrs=["10.0.0.1/24"],
        )
    ],
    floating_ips=[contracts.FloatingIpMapping(floating_ip="203.0.113.7", fixed_ip="10.0.0.5")],
    networks=[NETWORK_STATE],
)
PORT = net.Port.model_validate(
    {
        "id": "p1",
        "name": "",
        "project_id": "pA",
        "tenant_id": "pA",
        "network_id": "n1",
        "mac_address": "fa:16:3e:00:00:01",
        "status": "DOWN",
        "device_id": "vm1",
        "device_owner": "compute:nova",
        "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
        "security_groups": ["g1"],
        "binding:vnic_type": "normal",
        "binding:host_id": "cn1",
        "network_name": "private",
    }
)
GROUP = net.SecurityGroup(
    id="g1",
    name="web",
    project_id="pA",
    tenant_id="pA",
    security_group_rules=[
        net.SecurityGroupRule(
            id="r1",
            security_group_id="g1",
            direction="ingress",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            normalized_cidr=None,
        )
    ],
)

# One request and one reply per method of both contracts.
SAMPLES: dict[str, tuple[Message, Message]] = {
    # network: what compute calls
    "create_port": (
        net.CreatePort(
            network_id="n1",
            device_id="vm1",
            device_owner="compute:nova",
            fixed_ips=[net.FixedIpRequest(ip_address="10.0.0.5")],
            security_groups=["g1"],
        ),
        PORT,
    ),
    "get_network": (
        net.NetworkRef(network_id="n1"),
        net.NetworkInfo(id="n1", name="ext", project_id="admin", external=True),
    ),
    "get_port": (net.PortRef(port_id="p1"), PORT),
    "update_port": (net.UpdatePort(port_id="p1", device_id="", unbind=True), PORT),
    "update_port_binding": (
        net.BindPort(port_id="p1", host="cn1"),
        net.BoundPort.model_validate(
            PORT.model_dump(mode="json")
            | {
                "bridge": "brqn1",
                "mtu": 1450,
                "binding:error": {"code": "timeout", "message": "no answer", "details": {}},
            }
        ),
    ),
    "find_security_groups": (
        net.FindSecurityGroups(names_or_ids=["web", "g2"], missing_ok=True),
        net.SecurityGroups(security_groups=[GROUP]),
    ),
    "update_port_security_groups": (
        net.UpdatePortSecurityGroups(port_id="p1", add=["g1"], remove=["g0"]),
        net.PortGroupsChanged.model_validate(
            PORT.model_dump(mode="json") | {"added": ["g1"], "removed": ["g0"]}
        ),
    ),
    "delete_port": (net.PortRef(port_id="p1"), net.PortDeleted(id="p1", deleted=True)),
    "delete_ports": (
        net.DevicePorts(device_id="vm1"),
        net.DevicePortsDeleted(device_id="vm1", deleted=["p1"]),
    ),
    # network: this service's agents and operators
    "host_state": (
        HostStateRequest(host="cn1"),
        contracts.HostState(
            host="cn1", networks=[NETWORK_STATE], ports=[PORT_STATE], routers=[ROUTER_STATE]
        ),
    ),
    "audit": (Empty(), AuditReport(service="network", checked={"ports": 2})),
    # network.<host>
    "sync_network": (
        contracts.SyncNetwork(network=NETWORK_STATE, generation=3),
        contracts.NetworkSynced(
            network_id="n1", observed_generation=3, applied=True, bridge="brqn1", mtu=1450
        ),
    ),
    "wire_port": (
        PORT_STATE,
        contracts.PortWired(
            port_id="p1",
            observed_generation=7,
            applied=True,
            bridge="brqn1",
            mtu=1450,
            mac="fa:16:3e:00:00:01",
            device="tapp1",
        ),
    ),
    "unwire_port": (contracts.PortRef(port_id="p1"), contracts.PortUnwired(port_id="p1")),
    "sync_members": (
        contracts.SyncMembers(remote_groups={"g1": ["10.0.0.5"]}),
        contracts.MembersSynced(sets=1),
    ),
    "delete_network": (
        contracts.NetworkRef(network_id="n1"),
        contracts.NetworkDeleted(network_id="n1"),
    ),
    "sync_router": (
        contracts.SyncRouter(router=ROUTER_STATE, generation=4),
        contracts.RouterSynced(
            router_id="r1", observed_generation=4, applied=True, namespace="qrouter-r1"
        ),
    ),
    "inventory": (
        Empty(),
        contracts.Inventory(
            prefix="zq",
            links=["zqbrqn1"],
            dhcp={"n1": contracts.DhcpServed(running=True, hosts=[("fa:16:3e:00:00:01", "1")])},
            chains=["zqin1"],
            sets=[],
            routers=["zqqrouter-r1"],
        ),
    ),
}


def test_the_api_serves_its_contract() -> None:
    assert api_rpc.check(contracts.API) == []


def test_the_agent_serves_its_contract() -> None:
    assert agent_rpc.check(contracts.AGENT) == []


def test_the_api_contract_is_network_s_plus_the_agents_and_operators() -> None:
    assert contracts.API.names == net.NETWORK.names | {"host_state", "audit"}
    assert contracts.API.topic == net.NETWORK.topic == "network"


def _methods() -> list[Method[Any, Any]]:
    return [*contracts.API.methods, *contracts.AGENT.methods]


def test_every_method_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(m.name for m in _methods())


@pytest.mark.parametrize("method", _methods(), ids=lambda m: m.name)
def test_each_model_survives_its_wire_form(method: Method[Any, Any]) -> None:
    request, reply = SAMPLES[method.name]
    assert isinstance(request, method.request) and isinstance(reply, method.reply)
    wire = method.arguments(request)  # the call's keyword arguments, JSON values
    assert method.request.model_validate(wire) == request
    assert method.parse_reply(reply.model_dump(mode="json")) == reply


def test_neutron_names_travel_as_they_are() -> None:
    """What compute reads today: ``binding:host_id``, ``binding:error``, ``router:external``."""
    bound = SAMPLES["update_port_binding"][1].model_dump(mode="json")
    assert bound["binding:host_id"] == "cn1" and bound["binding:error"]["code"] == "timeout"
    assert bound["network_name"] == "private" and bound["bridge"] == "brqn1"
    assert "host_id" not in bound and "binding_error" not in bound
    network = SAMPLES["get_network"][1].model_dump(mode="json")
    assert network["router:external"] is True
    # An untyped sender's reply reads back by the Neutron names too.
    assert net.NetworkInfo.model_validate({"id": "n", "router:external": True}).external
