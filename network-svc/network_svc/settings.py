"""Settings of the network processes, from ``NETWORK_*`` environment variables.

Shared ones (``STACKLING_AMQP_URL``, ``STACKLING_DATA_DIR``, ...) apply when the
``NETWORK_`` form is not set; see ``common_rpc.chassis.settings``.

    >>> NetworkSettings(port=1234).port
    1234
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from common_rpc.chassis.settings import ServiceSettings


class NetworkSettings(ServiceSettings):
    service_name: ClassVar[str] = "network"
    model_config = SettingsConfigDict(env_prefix="NETWORK_", extra="ignore")

    port: int = 9696
    # The RPC topic the API replicas share (compute calls it); tests use one of their own.
    rpc_topic: str = "network"
    # Segments for tenant networks; inclusive "low-high".
    vxlan_range: str = "1000-1999"
    vlan_range: str = "100-199"
    default_network_type: str = "vxlan"
    physical_network: str = "physnet1"
    vxlan_mtu: int = 1450
    # The network-agent host that runs router namespaces; "" means this service's host
    # (or, with network nodes, the one scheduled). It wins over the network nodes.
    l3_host: str = ""
    # Network nodes (JSON list of hosts): each network's DHCP server and each router run
    # on one of them, the alive one with the fewest; [] keeps DHCP on every host serving
    # a network and routers on l3_host. VXLAN networks spanning hosts need them.
    network_nodes: list[str] = []
    # The availability zone of each network node (JSON object host -> zone); a host not
    # named is in default_availability_zone. Networks' and routers'
    # availability_zone_hints choose among the zones their nodes make.
    network_node_zones: dict[str, str] = {}
    default_availability_zone: str = "nova"
    # An agent silent this long is listed dead (they report every 10 s: the agents'
    # NETWORK_AGENT_HEARTBEAT_INTERVAL).
    agent_down_s: float = 30.0
    # Deadline of a command to an agent (the first port of a network also starts its DHCP);
    # below the callers' own deadlines, so they get the binding error, not a timeout.
    agent_rpc_timeout_s: float = 8.0
    # A bound port still DOWN this long after its binding is stuck (audit reports it).
    port_bind_deadline_s: float = 120.0
    # A project's quotas unless an admin set its own (Neutron's defaults); -1: unlimited.
    quota_network: int = 100
    quota_subnet: int = 100
    quota_port: int = 500
    quota_router: int = 10
    quota_floatingip: int = 50
    quota_security_group: int = 10
    quota_security_group_rule: int = 100

    def segment_range(self, network_type: str) -> range:
        text = self.vxlan_range if network_type == "vxlan" else self.vlan_range
        low, high = (int(part) for part in text.split("-", 1))
        return range(low, high + 1)

    def zone_of(self, host: str) -> str:
        """The availability zone of a network node (or of any host running an agent)."""
        return self.network_node_zones.get(host) or self.default_availability_zone

    def router_host(self) -> str:
        """Where routers run without network nodes (or with l3_host set)."""
        return self.l3_host or self.host
