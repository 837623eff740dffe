"""The ``network`` topic as other services call it: a server's ports, typed.

    network = NetworkApi(runtime.rpc, timeout=10)
    port = await network.create_port(
        CreatePort(network_id=net, device_id=sid, device_owner="compute:nova"), op_id=op
    )
    bound = await network.update_port_binding(port.id, "cn1")   # wired on cn1, then ACTIVE
    bound.bridge, bound.mtu, bound.binding_error                  # an error: it stays DOWN
    groups = await network.find_security_groups(["web"])          # NotFound / Conflict
    await network.update_port_security_groups(port.id, add=[groups[0].id])
    await network.update_port(port.id, device_id="", device_owner="", unbind=True)
    await network.delete_ports(sid)                                # a server's cleanup

Each call runs as the caller's context (``current_context()``): a project reaches only
its own ports (and the networks it may use). On the wire a request is its fields as the
call's keyword arguments and a reply is the model's JSON, with Neutron's attribute names
(``binding:host_id``, ``router:external``), as before these models existed: an untyped
sender (``rpc.call("network", "get_port", port_id=p)``) gets the same answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from ..methods import Contract, Message, Method
from ..rpc import RpcClient

# Neutron's attribute names with a colon travel as they are (aliases); Python uses the names.
_NEUTRON_NAMES = ConfigDict(
    extra="ignore", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
)

# ---------------------------------------------------------------- requests


class NetworkRef(Message):
    network_id: str


class PortRef(Message):
    port_id: str


class FixedIpRequest(Message):
    """An address asked for: on a subnet, a given address, or both."""

    subnet_id: str | None = None
    ip_address: str | None = None


class CreatePort(Message):
    """A port on a network the caller may plug into; its project's ``default`` group
    unless ``security_groups`` (ids) are given."""

    network_id: str
    name: str = ""
    device_id: str = ""
    device_owner: str = ""
    fixed_ips: list[FixedIpRequest] | None = None
    security_groups: list[str] | None = None
    mac_address: str | None = None


class UpdatePort(Message):
    """Claim a port for a server (device id and owner), or give it back: ``unbind``
    clears its host, takes it DOWN and has the old host unwire it."""

    port_id: str
    device_id: str | None = None
    device_owner: str | None = None
    unbind: bool = False


class BindPort(Message):
    port_id: str
    host: str


class DevicePorts(Message):
    device_id: str


class FindSecurityGroups(Message):
    names_or_ids: list[str]
    # An entry that matches nothing is skipped instead of NotFound.
    missing_ok: bool = False


class UpdatePortSecurityGroups(Message):
    port_id: str
    add: list[str] | None = None
    remove: list[str] | None = None


# ---------------------------------------------------------------- replies


class NetworkInfo(Message):
    """A network the caller may use (its own, shared or external)."""

    model_config = _NEUTRON_NAMES

    id: str
    name: str = ""
    project_id: str = ""
    shared: bool = False
    external: bool = Field(False, alias="router:external")


class FixedIp(Message):
    subnet_id: str
    ip_address: str


class AddressPair(Message):
    ip_address: str
    mac_address: str | None = None


class ExtraDhcpOpt(Message):
    opt_name: str
    opt_value: str
    ip_version: int | None = None


class Port(Message):
    """A port as Neutron shows it (``GET /v2.0/ports/{id}``), with its network's name."""

    model_config = _NEUTRON_NAMES

    id: str
    name: str = ""
    description: str | None = ""
    project_id: str = ""
    tenant_id: str = ""
    tags: list[str] = []
    created_at: str | None = None
    updated_at: str | None = None
    revision_number: int = 0
    network_id: str
    mac_address: str
    admin_state_up: bool = True
    status: str
    device_id: str = ""
    device_owner: str = ""
    fixed_ips: list[FixedIp] = []
    security_groups: list[str] = []
    allowed_address_pairs: list[AddressPair] = []
    extra_dhcp_opts: list[ExtraDhcpOpt] = []
    port_security_enabled: bool = True
    vnic_type: str = Field("normal", alias="binding:vnic_type")
    # Admins only (None for everyone else).
    host_id: str | None = Field(None, alias="binding:host_id")
    vif_type: str | None = Field(None, alias="binding:vif_type")
    # Free-form by design: what Neutron's mechanism drivers say of the binding.
    vif_details: dict[str, Any] | None = Field(None, alias="binding:vif_details")
    profile: dict[str, Any] | None = Field(None, alias="binding:profile")
    # The network's name: compute keys a server's ``addresses`` by it.
    network_name: str = ""


class Fault(Message):
    """An error as it crossed the wire (``RpcError.to_wire()``)."""

    code: str
    message: str
    # Free-form by design: each error carries what its kind needs (Neutron's fault type...).
    details: dict[str, Any] = {}


class BoundPort(Port):
    """A port bound to a host: ACTIVE once that host's agent wired it, else DOWN with
    ``binding:error`` (``timeout`` when the agent did not answer in time)."""

    # The bridge the hypervisor adds the guest's NIC (``device``) to, and its MTU.
    bridge: str
    mtu: int
    device: str | None = None
    observed_generation: int | None = None
    binding_error: Fault | None = Field(None, alias="binding:error")


class PortGroupsChanged(Port):
    """The port after ``update_port_security_groups``, with the ids this call changed."""

    added: list[str] = []
    removed: list[str] = []


class PortDeleted(Message):
    id: str
    # False: the port was already gone (a retried delete).
    deleted: bool


class DevicePortsDeleted(Message):
    device_id: str
    deleted: list[str] = []


class SecurityGroupRule(Message):
    """A rule as Neutron shows it."""

    id: str
    project_id: str = ""
    tenant_id: str = ""
    security_group_id: str
    direction: str
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None
    normalized_cidr: str | None = None
    belongs_to_default_sg: bool = False
    description: str | None = ""
    tags: list[str] = []
    created_at: str | None = None
    updated_at: str | None = None
    revision_number: int = 0


class SecurityGroup(Message):
    """A group as Neutron shows it, with its rules."""

    id: str
    name: str = ""
    description: str | None = ""
    project_id: str = ""
    tenant_id: str = ""
    tags: list[str] = []
    created_at: str | None = None
    updated_at: str | None = None
    revision_number: int = 0
    stateful: bool = True
    shared: bool = False
    security_group_rules: list[SecurityGroupRule] = []


class SecurityGroups(Message):
    security_groups: list[SecurityGroup] = []


# ---------------------------------------------------------------- methods

CREATE_PORT = Method("create_port", CreatePort, Port, doc="a port on a network (op_id: once)")
GET_NETWORK = Method("get_network", NetworkRef, NetworkInfo, doc="NotFound unless usable")
GET_PORT = Method("get_port", PortRef, Port)
UPDATE_PORT = Method("update_port", UpdatePort, Port, doc="claim a port, or give it back")
UPDATE_PORT_BINDING = Method(
    "update_port_binding", BindPort, BoundPort, doc="wire it on the host, then ACTIVE"
)
FIND_SECURITY_GROUPS = Method(
    "find_security_groups",
    FindSecurityGroups,
    SecurityGroups,
    doc="the caller's groups by id or name (an id, else a name only one group has)",
)
UPDATE_PORT_SECURITY_GROUPS = Method(
    "update_port_security_groups",
    UpdatePortSecurityGroups,
    PortGroupsChanged,
    doc="add and remove group ids in one transaction (idempotent)",
)
DELETE_PORT = Method("delete_port", PortRef, PortDeleted, doc="idempotent")
DELETE_PORTS = Method(
    "delete_ports", DevicePorts, DevicePortsDeleted, doc="every port of a device (idempotent)"
)

NETWORK = Contract(
    "network",
    [
        CREATE_PORT,
        GET_NETWORK,
        GET_PORT,
        UPDATE_PORT,
        UPDATE_PORT_BINDING,
        FIND_SECURITY_GROUPS,
        UPDATE_PORT_SECURITY_GROUPS,
        DELETE_PORT,
        DELETE_PORTS,
    ],
)


class NetworkApi:
    """The typed client of the ``network`` topic (any replica of network-api).

    ``op_id`` makes a retried call run once (the server keeps its first reply).
    """

    def __init__(self, rpc: RpcClient, *, topic: str = "network", timeout: float = 10.0) -> None:
        self.rpc = rpc
        self.topic = topic
        self.timeout = timeout

    async def create_port(self, request: CreatePort, *, op_id: str | None = None) -> Port:
        return await self.rpc.invoke(
            self.topic, CREATE_PORT, request, timeout=self.timeout, op_id=op_id
        )

    async def get_network(self, network_id: str) -> NetworkInfo:
        """The network if the caller may use it (own, shared or external), else NotFound."""
        return await self.rpc.invoke(
            self.topic, GET_NETWORK, NetworkRef(network_id=network_id), timeout=self.timeout
        )

    async def get_port(self, port_id: str) -> Port:
        return await self.rpc.invoke(
            self.topic, GET_PORT, PortRef(port_id=port_id), timeout=self.timeout
        )

    async def update_port(
        self,
        port_id: str,
        *,
        device_id: str | None = None,
        device_owner: str | None = None,
        unbind: bool = False,
    ) -> Port:
        request = UpdatePort(
            port_id=port_id, device_id=device_id, device_owner=device_owner, unbind=unbind
        )
        return await self.rpc.invoke(self.topic, UPDATE_PORT, request, timeout=self.timeout)

    async def update_port_binding(self, port_id: str, host: str) -> BoundPort:
        return await self.rpc.invoke(
            self.topic,
            UPDATE_PORT_BINDING,
            BindPort(port_id=port_id, host=host),
            timeout=self.timeout,
        )

    async def find_security_groups(
        self, names_or_ids: list[str], *, missing_ok: bool = False
    ) -> list[SecurityGroup]:
        """In the order asked, each once; NotFound / Conflict (a name several groups
        share) carry the entry as ``details["name"]``."""
        request = FindSecurityGroups(names_or_ids=names_or_ids, missing_ok=missing_ok)
        reply = await self.rpc.invoke(
            self.topic, FIND_SECURITY_GROUPS, request, timeout=self.timeout
        )
        return reply.security_groups

    async def update_port_security_groups(
        self, port_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> PortGroupsChanged:
        request = UpdatePortSecurityGroups(port_id=port_id, add=add or [], remove=remove or [])
        return await self.rpc.invoke(
            self.topic, UPDATE_PORT_SECURITY_GROUPS, request, timeout=self.timeout
        )

    async def delete_port(self, port_id: str) -> PortDeleted:
        return await self.rpc.invoke(
            self.topic, DELETE_PORT, PortRef(port_id=port_id), timeout=self.timeout
        )

    async def delete_ports(self, device_id: str) -> DevicePortsDeleted:
        """Every port on ``device_id``, also those a create whose reply was lost made."""
        return await self.rpc.invoke(
            self.topic, DELETE_PORTS, DevicePorts(device_id=device_id), timeout=self.timeout
        )
