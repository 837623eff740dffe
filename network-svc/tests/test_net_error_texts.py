"""The network API's negative paths answer Neutron's status, fault ``type`` and text.

Clients and Tempest read these (Tempest's ``test_create_security_group_rule_with_invalid_ports``
matches ``Invalid value for port -16``, its IPv6 rule test ``Conflicting value ethertype``,
its port tests ``IpAddressAlreadyAllocated``), so each row is one request and what Neutron
answers it, taken from neutron_lib.exceptions, neutron/extensions/securitygroup.py,
neutron/db and the API layer's attribute checks. One app serves the whole table; a refused
request changes nothing, which the last test checks.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from netapi_helpers import Api, network_api

pytestmark = pytest.mark.asyncio(loop_scope="module")

MISSING = str(uuid.UUID(int=0xDEAD))
ADMIN = ("admin",)
PROTOCOLS = (
    "(None, 'any', 'ah', 'dccp', 'egp', 'esp', 'gre', 'hopopt', 'icmp', 'igmp', 'ip', "
    "'ipip', 'ipv6-encap', 'ipv6-frag', 'ipv6-icmp', 'icmpv6', 'ipv6-nonxt', 'ipv6-opts', "
    "'ipv6-route', 'ospf', 'pgm', 'rsvp', 'sctp', 'tcp', 'udp', 'udplite', 'vrrp')"
)


@dataclass
class World:
    api: Api
    ids: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.ids[key]


async def _ok(resp: Any, key: str) -> dict[str, Any]:
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json()[key])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with network_api(tmp_path_factory.mktemp("errors"), default_network_type="local") as api:
        ids: dict[str, str] = {}
        body = {"network": {"name": "public", "router:external": True}}
        ext = await _ok(await api.post("admin", "/v2.0/networks", body, *ADMIN), "network")
        ext_sub = await api.subnet("admin", ext["id"], "203.0.113.0/24", enable_dhcp=False)
        net = await api.network("pA")
        pool = [{"start": "10.7.0.10", "end": "10.7.0.100"}]
        sub = await api.subnet("pA", net["id"], "10.7.0.0/24", allocation_pools=pool)
        net2 = await api.network("pA")
        sub2 = await api.subnet("pA", net2["id"], "10.8.0.0/24")
        net3 = await api.network("pA")
        no_gw = await api.subnet("pA", net3["id"], "10.9.0.0/24", gateway_ip=None)
        overlap_net = await api.network("pA")
        overlap = await api.subnet("pA", overlap_net["id"], "10.7.0.0/24")
        group = {"security_group": {"name": "web"}}
        web = await _ok(await api.post("pA", "/v2.0/security-groups", group), "security_group")
        rule = {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp"}
        rule |= {"port_range_min": 66, "port_range_max": 67}
        made = await api.post("pA", "/v2.0/security-group-rules", {"security_group_rule": rule})
        web_rule = await _ok(made, "security_group_rule")
        port = await api.port(
            "pA",
            net["id"],
            fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.7.0.50"}],
            mac_address="fa:16:3e:00:00:50",
            security_groups=[web["id"]],
        )
        other_port = await api.port("pA", net2["id"])
        bare = await api.port("pA", net["id"], port_security_enabled=False)
        gateway = {"network_id": ext["id"]}
        body = {"router": {"name": "r1", "external_gateway_info": gateway}}
        router = await _ok(await api.post("pA", "/v2.0/routers", body), "router")
        added = await api.put(
            "pA", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}
        )
        assert added.status_code == 200, added.text
        body = {"floatingip": {"floating_network_id": ext["id"], "port_id": port["id"]}}
        fip = await _ok(await api.post("pA", "/v2.0/floatingips", body), "floatingip")
        [default] = [
            g
            for g in (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
            if g["name"] == "default"
        ]
        quota = {"quota": {"network": 0}}
        assert (await api.put("admin", "/v2.0/quotas/pq", quota, *ADMIN)).status_code == 200
        ids |= {
            "ext": ext["id"],
            "ext_sub": ext_sub["id"],
            "net": net["id"],
            "sub": sub["id"],
            "net2": net2["id"],
            "sub2": sub2["id"],
            "no_gw": no_gw["id"],
            "overlap": overlap["id"],
            "web": web["id"],
            "web_rule": web_rule["id"],
            "default": default["id"],
            "port": port["id"],
            "other_port": other_port["id"],
            "bare": bare["id"],
            "router": router["id"],
            "interface": added.json()["port_id"],
            "fip": fip["id"],
            "fip_address": fip["floating_ip_address"],
        }
        yield World(api, ids)


@dataclass(frozen=True)
class Case:
    """One request (as ``project``, with ``roles``) and Neutron's answer to it."""

    method: str
    path: Callable[[World], str]
    body: Callable[[World], Any] | None
    status: int
    type: str
    message: Callable[[World], str]
    project: str = "pA"
    roles: tuple[str, ...] = ("member",)


def _rule(w: World, **attrs: Any) -> dict[str, Any]:
    base = {"security_group_id": w["web"], "direction": "ingress", "ethertype": "IPv4"}
    return {"security_group_rule": base | attrs}


def _port_range(pmin: Any, pmax: Any, protocol: str = "tcp") -> Callable[[World], Any]:
    return lambda w: _rule(w, protocol=protocol, port_range_min=pmin, port_range_max=pmax)


def _add(**body: Any) -> Callable[[World], Any]:
    return lambda w: {k: (w[v] if v in w.ids else v) for k, v in body.items()}


ROUTER_ADD = lambda w: f"/v2.0/routers/{w['router']}/add_router_interface"  # noqa: E731
ROUTER_REMOVE = lambda w: f"/v2.0/routers/{w['router']}/remove_router_interface"  # noqa: E731
# The text names the refused floating IP itself (an address and id made, then undone).
ALREADY = "<the refused floating IP's own address and id>"

CASES: dict[str, Case] = {
    # networks
    "network not found": Case(
        "GET", lambda w: f"/v2.0/networks/{MISSING}", None, 404, "NetworkNotFound",
        lambda w: f"Network {MISSING} could not be found."),
    "network update not found": Case(
        "PUT", lambda w: f"/v2.0/networks/{MISSING}", lambda w: {"network": {"name": "x"}},
        404, "NetworkNotFound", lambda w: f"Network {MISSING} could not be found."),
    "network delete not found": Case(
        "DELETE", lambda w: f"/v2.0/networks/{MISSING}", None, 404, "NetworkNotFound",
        lambda w: f"Network {MISSING} could not be found."),
    "network external by a member": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"network": {"router:external": True}},
        403, "PolicyNotAuthorized",
        lambda w: "(rule:create_network and rule:create_network:router:external) is "
        "disallowed by policy"),
    "external network update by a member": Case(
        "PUT", lambda w: f"/v2.0/networks/{w['ext']}", lambda w: {"network": {"name": "x"}},
        403, "PolicyNotAuthorized", lambda w: "rule:update_network is disallowed by policy"),
    "network body missing": Case(
        "POST", lambda w: "/v2.0/networks", None, 400, "HTTPBadRequest",
        lambda w: "Resource body required"),
    "network envelope missing": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"net": {}}, 400, "HTTPBadRequest",
        lambda w: "Unable to find 'network' in request body"),
    "network envelope not an object": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"network": "x"}, 400, "HTTPBadRequest",
        lambda w: "Object 'network' contains invalid data"),
    "network bulk empty": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"networks": []}, 400, "HTTPBadRequest",
        lambda w: "Resources required"),
    "network boolean": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"network": {"admin_state_up": "maybe"}},
        400, "InvalidInput",
        lambda w: "Invalid input for operation: 'maybe' cannot be converted to boolean."),
    "network name not a string": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"network": {"name": 5}}, 400,
        "HTTPBadRequest", lambda w: "Invalid input for name. Reason: '5' is not a valid string."),
    "network for another project": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"network": {"project_id": "pB"}}, 400,
        "HTTPBadRequest",
        lambda w: "Specifying 'project_id' other than the authenticated project in request "
        "is not allowed for the current user."),
    "network in use": Case(
        "DELETE", lambda w: f"/v2.0/networks/{w['net2']}", None, 409, "NetworkInUse",
        lambda w: f"Unable to complete operation on network {w['net2']}. There are one or "
        "more ports still in use on the network."),
    "network over quota": Case(
        "POST", lambda w: "/v2.0/networks", lambda w: {"network": {"name": "n"}}, 409,
        "OverQuota", lambda w: "Quota exceeded for resources: ['network'].", project="pq"),
    "network list limit": Case(
        "GET", lambda w: "/v2.0/networks?limit=x", None, 400, "BadRequest",
        lambda w: "Bad limit request: Limit must be an integer 0 or greater and not 'x'."),
    "network list sort key": Case(
        "GET", lambda w: "/v2.0/networks?sort_key=bogus&sort_dir=asc", None, 400, "HTTPBadRequest",
        lambda w: "['bogus'] is invalid attribute for sort_keys"),
    # subnets
    "subnet not found": Case(
        "GET", lambda w: f"/v2.0/subnets/{MISSING}", None, 404, "SubnetNotFound",
        lambda w: f"Subnet {MISSING} could not be found."),
    "external subnet hidden": Case(
        "GET", lambda w: f"/v2.0/subnets/{w['ext_sub']}", None, 404, "SubnetNotFound",
        lambda w: f"Subnet {w['ext_sub']} could not be found."),
    "subnet network_id required": Case(
        "POST", lambda w: "/v2.0/subnets", lambda w: {"subnet": {"cidr": "10.0.0.0/24"}}, 400,
        "HTTPBadRequest",
        lambda w: "Failed to parse request. Required attribute 'network_id' not specified"),
    "subnet cidr invalid": Case(
        "POST", lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w["net"], "cidr": "x", "ip_version": 4}}, 400,
        "HTTPBadRequest",
        lambda w: "Invalid input for cidr. Reason: 'x' is not a valid IP subnet."),
    "subnet ip_version": Case(
        "POST", lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w["net"], "cidr": "10.1.0.0/24", "ip_version": 5}},
        400, "HTTPBadRequest",
        lambda w: "Invalid input for ip_version. Reason: 5 is not in [4, 6]."),
    "subnet cidr version": Case(
        "POST", lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w["net"], "cidr": "fd00::/64", "ip_version": 4}},
        400, "InvalidInput",
        lambda w: "Invalid input for operation: cidr 'fd00::/64' does not match the "
        "ip_version '4'."),
    "subnet overlaps": Case(
        "POST", lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w["net"], "cidr": "10.7.0.0/16", "ip_version": 4}},
        400, "InvalidInput",
        lambda w: "Invalid input for operation: Requested subnet with cidr: 10.7.0.0/16 for "
        f"network: {w['net']} overlaps with another subnet."),
    "subnet gateway in pool": Case(
        "POST", lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w["net"], "cidr": "10.2.0.0/24", "ip_version": 4,
                              "allocation_pools": [{"start": "10.2.0.1", "end": "10.2.0.9"}]}},
        409, "GatewayConflictWithAllocationPools",
        lambda w: "Gateway ip 10.2.0.1 conflicts with allocation pool 10.2.0.1-10.2.0.9."),
    "subnet on an external network": Case(
        "POST", lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w["ext"], "cidr": "10.3.0.0/24", "ip_version": 4}},
        403, "PolicyNotAuthorized", lambda w: "rule:create_subnet is disallowed by policy"),
    "subnet in use": Case(
        "DELETE", lambda w: f"/v2.0/subnets/{w['sub2']}", None, 409, "SubnetInUse",
        lambda w: f"Unable to complete operation on subnet {w['sub2']}: One or more ports "
        "have an IP allocation from this subnet."),
    "subnet gateway held by a router": Case(
        "PUT", lambda w: f"/v2.0/subnets/{w['sub']}",
        lambda w: {"subnet": {"gateway_ip": "10.7.0.254"}}, 409, "GatewayIpInUse",
        lambda w: f"Current gateway ip 10.7.0.1 already in use by port {w['interface']}. "
        "Unable to update."),
    "subnet read-only": Case(
        "PUT", lambda w: f"/v2.0/subnets/{w['sub']}", lambda w: {"subnet": {"cidr": "10.7.0.0/16"}},
        400, "HTTPBadRequest", lambda w: "Cannot update read-only attribute cidr"),
    # ports
    "port not found": Case(
        "GET", lambda w: f"/v2.0/ports/{MISSING}", None, 404, "PortNotFound",
        lambda w: f"Port {MISSING} could not be found."),
    "port on a missing network": Case(
        "POST", lambda w: "/v2.0/ports", lambda w: {"port": {"network_id": MISSING}}, 404,
        "NetworkNotFound", lambda w: f"Network {MISSING} could not be found."),
    "port network_id required": Case(
        "POST", lambda w: "/v2.0/ports", lambda w: {"port": {"name": "p"}}, 400,
        "HTTPBadRequest",
        lambda w: "Failed to parse request. Required attribute 'network_id' not specified"),
    "port on an external network": Case(
        "POST", lambda w: "/v2.0/ports", lambda w: {"port": {"network_id": w["ext"]}}, 403,
        "PolicyNotAuthorized", lambda w: "rule:create_port is disallowed by policy"),
    "port binding by a member": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"], "binding:host_id": "h"}}, 403,
        "PolicyNotAuthorized",
        lambda w: "(rule:create_port and rule:create_port:binding:host_id) is disallowed by "
        "policy"),
    "port address taken": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"],
                            "fixed_ips": [{"subnet_id": w["sub"], "ip_address": "10.7.0.50"}]}},
        409, "IpAddressAlreadyAllocated",
        lambda w: f"IP address 10.7.0.50 already allocated in subnet {w['sub']}"),
    "port address off the network": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"], "fixed_ips": [{"ip_address": "10.99.0.5"}]}},
        400, "InvalidIpForNetwork",
        lambda w: "IP address 10.99.0.5 is not a valid IP for any of the subnets on the "
        "specified network."),
    "port address off the subnet": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"],
                            "fixed_ips": [{"subnet_id": w["sub"], "ip_address": "10.8.0.5"}]}},
        400, "InvalidIpForSubnet",
        lambda w: "IP address 10.8.0.5 is not a valid IP for the specified subnet."),
    "port subnet of another network": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"], "fixed_ips": [{"subnet_id": w["sub2"]}]}},
        400, "InvalidInput",
        lambda w: f"Invalid input for operation: Failed to create port on network {w['net']}, "
        f"because fixed_ips included invalid subnet {w['sub2']}."),
    "port address malformed": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"], "fixed_ips": [{"ip_address": "bad"}]}},
        400, "HTTPBadRequest",
        lambda w: "Invalid input for fixed_ips. Reason: 'bad' is not a valid IP address."),
    "port mac malformed": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"], "mac_address": "zz"}}, 400, "HTTPBadRequest",
        lambda w: "Invalid input for mac_address. Reason: 'zz' is not a valid MAC address."),
    "port mac in use": Case(
        "POST", lambda w: "/v2.0/ports",
        lambda w: {"port": {"network_id": w["net"], "mac_address": "fa:16:3e:00:00:50"}},
        409, "MacAddressInUse",
        lambda w: f"Unable to complete operation for network {w['net']}. The mac address "
        "fa:16:3e:00:00:50 is in use."),
    "router interface port delete": Case(
        "DELETE", lambda w: f"/v2.0/ports/{w['interface']}", None, 409, "ServicePortInUse",
        lambda w: f"Port {w['interface']} cannot be deleted directly via the port API: has "
        "device owner network:router_interface."),
    "port groups without port security": Case(
        "PUT", lambda w: f"/v2.0/ports/{w['bare']}",
        lambda w: {"port": {"security_groups": [w["web"]]}}, 400,
        "PortSecurityAndIPRequiredForSecurityGroups",
        lambda w: "Port security must be enabled and port must have an IP address in order "
        "to use security groups."),
    "port security off with groups": Case(
        "PUT", lambda w: f"/v2.0/ports/{w['port']}",
        lambda w: {"port": {"port_security_enabled": False}}, 409,
        "PortSecurityPortHasSecurityGroup",
        lambda w: "Port has security group associated. Cannot disable port security or IP "
        "address until security group is removed."),
    # security groups and rules
    "group not found": Case(
        "GET", lambda w: f"/v2.0/security-groups/{MISSING}", None, 404, "SecurityGroupNotFound",
        lambda w: f"Security group {MISSING} does not exist"),
    "group delete not found": Case(
        "DELETE", lambda w: f"/v2.0/security-groups/{MISSING}", None, 404,
        "SecurityGroupNotFound", lambda w: f"Security group {MISSING} does not exist"),
    "rule not found": Case(
        "GET", lambda w: f"/v2.0/security-group-rules/{MISSING}", None, 404,
        "SecurityGroupRuleNotFound", lambda w: f"Security group rule {MISSING} does not exist"),
    "rule on a missing group": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: {"security_group_rule": {"security_group_id": MISSING, "direction": "ingress"}},
        404, "SecurityGroupNotFound", lambda w: f"Security group {MISSING} does not exist"),
    "rule direction required": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: {"security_group_rule": {"security_group_id": w["web"]}}, 400,
        "HTTPBadRequest",
        lambda w: "Failed to parse request. Required attribute 'direction' not specified"),
    "rule direction": Case(
        "POST", lambda w: "/v2.0/security-group-rules", lambda w: _rule(w, direction="sideways"),
        400, "HTTPBadRequest",
        lambda w: "Invalid input for direction. Reason: sideways is not in ['ingress', 'egress']."),
    "rule protocol": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, protocol="bad_protocol_name"), 400,
        "SecurityGroupRuleInvalidProtocol",
        lambda w: f"Security group rule protocol bad_protocol_name not supported. Only "
        f"protocol values {PROTOCOLS} and integer representations [0 to 255] are supported."),
    "rule ethertype": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, ethertype="bad_ethertype"), 400, "SecurityGroupRuleInvalidEtherType",
        lambda w: "Security group rule for ethertype 'bad_ethertype' not supported. Allowed "
        "values are ['IPv4', 'IPv6']."),
    "rule prefix": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, protocol="tcp", remote_ip_prefix="192.168.1./24"), 400,
        "InvalidCIDR", lambda w: "Invalid CIDR 192.168.1./24 given as IP prefix."),
    "rule prefix version": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, ethertype="IPv6", protocol="tcp", remote_ip_prefix="10.0.0.0/24"),
        400, "SecurityGroupRuleParameterConflict",
        lambda w: "Conflicting value ethertype IPv6 for CIDR 10.0.0.0/24"),
    "rule prefix and group": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, remote_ip_prefix="10.0.0.0/24", remote_group_id=w["web"]), 400,
        "SecurityGroupMultipleRemoteEntites",
        lambda w: "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id "
        "may be provided."),
    "rule remote group missing": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, protocol="tcp", remote_group_id=MISSING), 404,
        "SecurityGroupNotFound", lambda w: f"Security group {MISSING} does not exist"),
    "rule port -16": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(-16, 80), 400,
        "SecurityGroupInvalidPortValue", lambda w: "Invalid value for port -16"),
    "rule port range reversed": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(80, 79), 400,
        "SecurityGroupInvalidPortRange",
        lambda w: "For TCP/UDP protocols, port_range_min must be <= port_range_max"),
    "rule port 65536": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(80, 65536), 400,
        "SecurityGroupInvalidPortValue", lambda w: "Invalid value for port 65536"),
    "rule port max only": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(None, 6), 400,
        "SecurityGroupInvalidPortRange",
        lambda w: "For TCP/UDP protocols, port_range_min must be <= port_range_max"),
    "rule ports both bad": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(-16, 65536), 400,
        "SecurityGroupInvalidPortValue", lambda w: "Invalid value for port -16"),
    "rule ICMP code": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(1, 256, "icmp"), 400,
        "SecurityGroupInvalidIcmpValue",
        lambda w: "Invalid value for ICMP code (port_range_max) 256. It must be 0 to 255."),
    "rule ICMP -1": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(-1, 25, "icmp"), 400,
        "SecurityGroupInvalidPortValue", lambda w: "Invalid value for port -1"),
    "rule ICMP type missing": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(None, 6, "icmp"), 400,
        "SecurityGroupMissingIcmpType",
        lambda w: "ICMP code (port-range-max) 6 is provided but ICMP type (port-range-min) is "
        "missing."),
    "rule ICMP type": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(300, 1, "icmp"), 400,
        "SecurityGroupInvalidIcmpValue",
        lambda w: "Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."),
    "rule ports without protocol": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, port_range_min=22, port_range_max=22), 400,
        "SecurityGroupProtocolRequiredWithPorts",
        lambda w: "Must also specify protocol if port range is given."),
    "rule ports for gre": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(22, 22, "gre"), 400,
        "SecurityGroupInvalidProtocolForPort",
        lambda w: "Ports cannot be specified for protocol 47. Ports are only supported for "
        "DCCP, SCTP, TCP, UDP, UDPLITE."),
    "rule IPv6 protocol in IPv4": Case(
        "POST", lambda w: "/v2.0/security-group-rules",
        lambda w: _rule(w, protocol="ipv6-icmp"), 400,
        "SecurityGroupEthertypeConflictWithProtocol",
        lambda w: "Invalid ethertype IPv4 for protocol ipv6-icmp."),
    "rule duplicate": Case(
        "POST", lambda w: "/v2.0/security-group-rules", _port_range(66, 67, "6"), 409,
        "SecurityGroupRuleExists",
        lambda w: f"Security group rule already exists. Rule id is {w['web_rule']}."),
    "second default group": Case(
        "POST", lambda w: "/v2.0/security-groups",
        lambda w: {"security_group": {"name": "default"}}, 409,
        "SecurityGroupDefaultAlreadyExists", lambda w: "Default security group already exists."),
    "rename to default": Case(
        "PUT", lambda w: f"/v2.0/security-groups/{w['web']}",
        lambda w: {"security_group": {"name": "default"}}, 409,
        "SecurityGroupDefaultAlreadyExists", lambda w: "Default security group already exists."),
    "rename the default": Case(
        "PUT", lambda w: f"/v2.0/security-groups/{w['default']}",
        lambda w: {"security_group": {"name": "other"}}, 409,
        "SecurityGroupCannotUpdateDefault",
        lambda w: "Updating default security group not allowed."),
    "delete the default": Case(
        "DELETE", lambda w: f"/v2.0/security-groups/{w['default']}", None, 409,
        "SecurityGroupCannotRemoveDefault",
        lambda w: "Insufficient rights for removing default security group."),
    "group in use": Case(
        "DELETE", lambda w: f"/v2.0/security-groups/{w['web']}", None, 409, "SecurityGroupInUse",
        lambda w: f"Security Group {w['web']} in use."),
    # routers
    "router not found": Case(
        "GET", lambda w: f"/v2.0/routers/{MISSING}", None, 404, "RouterNotFound",
        lambda w: f"Router {MISSING} could not be found"),
    "router gateway on a missing network": Case(
        "PUT", lambda w: f"/v2.0/routers/{w['router']}",
        lambda w: {"router": {"external_gateway_info": {"network_id": MISSING}}}, 404,
        "NetworkNotFound", lambda w: f"Network {MISSING} could not be found."),
    "router gateway not external": Case(
        "PUT", lambda w: f"/v2.0/routers/{w['router']}",
        lambda w: {"router": {"external_gateway_info": {"network_id": w["net2"]}}}, 400,
        "BadRequest",
        lambda w: f"Bad router request: Network {w['net2']} is not an external network."),
    "router gateway SNAT by a member": Case(
        "PUT", lambda w: f"/v2.0/routers/{w['router']}",
        lambda w: {"router": {"external_gateway_info": {"network_id": w["ext"],
                                                        "enable_snat": False}}},
        403, "PolicyNotAuthorized",
        lambda w: "(rule:update_router and rule:update_router:external_gateway_info and "
        "rule:update_router:external_gateway_info:enable_snat) is disallowed by policy"),
    "router distributed by a member": Case(
        "POST", lambda w: "/v2.0/routers", lambda w: {"router": {"distributed": True}}, 403,
        "PolicyNotAuthorized",
        lambda w: "(rule:create_router and rule:create_router:distributed) is disallowed by "
        "policy"),
    "router in use": Case(
        "DELETE", lambda w: f"/v2.0/routers/{w['router']}", None, 409, "RouterInUse",
        lambda w: f"Router {w['router']} has ports still attached: {w['interface']}"),
    "interface neither": Case(
        "PUT", ROUTER_ADD, lambda w: {}, 400, "BadRequest",
        lambda w: "Bad router request: Either subnet_id or port_id must be specified."),
    "interface both": Case(
        "PUT", ROUTER_ADD, _add(subnet_id="sub2", port_id="other_port"), 400, "BadRequest",
        lambda w: "Bad router request: Cannot specify both subnet-id and port-id."),
    "interface id": Case(
        "PUT", ROUTER_ADD, _add(subnet_id="nope"), 400, "BadRequest",
        lambda w: "Bad router request: 'nope' is not a valid UUID."),
    "interface overlap": Case(
        "PUT", ROUTER_ADD, _add(subnet_id="overlap"), 400, "BadRequest",
        lambda w: f"Bad router request: Cidr 10.7.0.0/24 of subnet {w['overlap']} overlaps "
        f"with cidr 10.7.0.0/24 of subnet {w['sub']}."),
    "interface again": Case(
        "PUT", ROUTER_ADD, _add(subnet_id="sub"), 400, "BadRequest",
        lambda w: f"Bad router request: Router already has a port on subnet {w['sub']}."),
    "interface without gateway": Case(
        "PUT", ROUTER_ADD, _add(subnet_id="no_gw"), 400, "BadRequest",
        lambda w: "Bad router request: Subnet for router interface must have a gateway IP."),
    "interface port in use": Case(
        "PUT", ROUTER_ADD, _add(port_id="interface"), 409, "PortInUse",
        lambda w: f"Unable to complete operation on port {w['interface']} for network "
        f"{w['net']}. Port already has an attached device {w['router']}."),
    "interface removal by port": Case(
        "PUT", ROUTER_REMOVE, _add(port_id="other_port"), 404, "RouterInterfaceNotFound",
        lambda w: f"Router {w['router']} does not have an interface with id {w['other_port']}"),
    "interface removal by subnet": Case(
        "PUT", ROUTER_REMOVE, _add(subnet_id="sub2"), 404, "RouterInterfaceNotFoundForSubnet",
        lambda w: f"Router {w['router']} has no interface on subnet {w['sub2']}"),
    "interface used by a floating IP": Case(
        "PUT", ROUTER_REMOVE, _add(subnet_id="sub"), 409, "RouterInterfaceInUseByFloatingIP",
        lambda w: f"Router interface for subnet {w['sub']} on router {w['router']} cannot be "
        "deleted, as it is required by one or more floating IPs."),
    "gateway used by a floating IP": Case(
        "PUT", lambda w: f"/v2.0/routers/{w['router']}",
        lambda w: {"router": {"external_gateway_info": {}}}, 409,
        "RouterExternalGatewayInUseByFloatingIp",
        lambda w: f"Gateway cannot be updated for router {w['router']}, since a gateway to "
        f"external network {w['ext']} is required by one or more floating IPs."),
    # floating IPs
    "floating IP not found": Case(
        "GET", lambda w: f"/v2.0/floatingips/{MISSING}", None, 404, "FloatingIPNotFound",
        lambda w: f"Floating IP {MISSING} could not be found"),
    "floating IP network required": Case(
        "POST", lambda w: "/v2.0/floatingips", lambda w: {"floatingip": {}}, 400,
        "HTTPBadRequest",
        lambda w: "Failed to parse request. Required attribute 'floating_network_id' not "
        "specified"),
    "floating IP on a private network": Case(
        "POST", lambda w: "/v2.0/floatingips",
        lambda w: {"floatingip": {"floating_network_id": w["net"]}}, 400, "BadRequest",
        lambda w: f"Bad floatingip request: Network {w['net']} is not a valid external "
        "network."),
    "floating IP address by a member": Case(
        "POST", lambda w: "/v2.0/floatingips",
        lambda w: {"floatingip": {"floating_network_id": w["ext"],
                                  "floating_ip_address": "203.0.113.9"}},
        403, "PolicyNotAuthorized",
        lambda w: "(rule:create_floatingip and rule:create_floatingip:floating_ip_address) is "
        "disallowed by policy"),
    "floating IP unreachable": Case(
        "POST", lambda w: "/v2.0/floatingips",
        lambda w: {"floatingip": {"floating_network_id": w["ext"], "port_id": w["other_port"]}},
        404, "ExternalGatewayForFloatingIPNotFound",
        lambda w: f"External network {w['ext']} is not reachable from subnet {w['sub2']}.  "
        f"Therefore, cannot associate Port {w['other_port']} with a Floating IP."),
    "floating IP fixed address without port": Case(
        "PUT", lambda w: f"/v2.0/floatingips/{w['fip']}",
        lambda w: {"floatingip": {"fixed_ip_address": "10.7.0.50"}}, 400, "BadRequest",
        lambda w: "Bad floatingip request: fixed_ip_address cannot be specified without a "
        "port_id."),
    "floating IP fixed address not the port's": Case(
        "PUT", lambda w: f"/v2.0/floatingips/{w['fip']}",
        lambda w: {"floatingip": {"port_id": w["port"], "fixed_ip_address": "10.7.0.99"}}, 400,
        "BadRequest",
        lambda w: f"Bad floatingip request: Port {w['port']} does not have fixed ip "
        "10.7.0.99."),
    "floating IP read-only": Case(
        "PUT", lambda w: f"/v2.0/floatingips/{w['fip']}",
        lambda w: {"floatingip": {"floating_network_id": w["net"]}}, 400, "HTTPBadRequest",
        lambda w: "Cannot update read-only attribute floating_network_id"),
    "floating IP on an address that has one": Case(
        "POST", lambda w: "/v2.0/floatingips",
        lambda w: {"floatingip": {"floating_network_id": w["ext"], "port_id": w["port"]}}, 409,
        "FloatingIPPortAlreadyAssociated", lambda w: ALREADY),
}  # fmt: skip


async def _send(w: World, case: Case) -> Any:
    headers = w.api.as_(case.project, *case.roles)
    body = case.body(w) if case.body is not None else None
    kwargs: dict[str, Any] = {"headers": headers}
    if case.method in ("POST", "PUT"):
        kwargs["json"] = body
    return await w.api.http.request(case.method, case.path(w), **kwargs)


@pytest.mark.parametrize("name", list(CASES))
async def test_neutron_fault(world: World, name: str) -> None:
    case = CASES[name]
    resp = await _send(world, case)
    assert resp.status_code == case.status, resp.text
    fault = resp.json()["NeutronError"]
    assert fault["type"] == case.type, fault
    if case.message(world) == ALREADY:
        assert fault["message"].startswith("Cannot associate floating IP 203.0.113."), fault
        assert fault["message"].endswith(
            f"with port {world['port']} using fixed IP 10.7.0.50, as that fixed IP already "
            f"has a floating IP on external network {world['ext']}."
        ), fault
    else:
        assert fault["message"] == case.message(world)
    assert fault["detail"] == ""


async def test_refusals_changed_nothing(world: World) -> None:
    api = world.api
    counts = {}
    for collection in ("networks", "subnets", "ports", "routers", "floatingips"):
        listed = (await api.get("admin", f"/v2.0/{collection}", *ADMIN)).json()[collection]
        counts[collection] = len(listed)
    groups = (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
    assert {g["name"] for g in groups} == {"default", "web"}
    # 5 networks (public + 4 of pA), 5 subnets, ports: 3 made + the router's 2 + the
    # floating IP's + 4 DHCP ports.
    assert counts == {"networks": 5, "subnets": 5, "ports": 10, "routers": 1, "floatingips": 1}
    [web] = [g for g in groups if g["name"] == "web"]
    assert len(web["security_group_rules"]) == 3  # 2 egress + the tcp 66-67 rule
