"""LinuxBridgeL2: one bridge per network, plus a VXLAN (or VLAN) uplink when segmented.

l2-population: when the network's state lists its peers (the other hosts serving it),
the VXLAN device learns nothing and floods nowhere by itself. Its forwarding entries
are made to match the list: one all-zeros entry per peer (broadcast and unknown
unicast go to the hosts that serve the network, and only to them: head-end
replication) and one per remote port's MAC; with ``proxy`` on, the device answers ARP
for remote ports from its neighbour entries (``ip neigh ... nud permanent``), so an ARP
request never crosses the underlay.

Example::

    l2 = LinuxBridgeL2(Names(), local_ip="192.0.2.10")
    br = l2.ensure_network(NetworkSpec(net_id, "vxlan", 1001, mtu=1450))  # brq… + vxlan-1001
    l2.plug_port(PortSpec(port_id, net_id, "fa:16:3e:00:00:01", device="tap…"))
"""

from __future__ import annotations

from collections.abc import Mapping

from network_svc.drivers.base import (
    DriverConfig,
    DriverError,
    NetworkSpec,
    PortSpec,
    forwarding_entries,
)
from network_svc.drivers.linux import netlink
from network_svc.drivers.names import Names

VXLAN_PORT = 4789


class LinuxBridgeL2:
    def __init__(
        self,
        names: Names | None = None,
        *,
        local_ip: str | None = None,
        physical_interface: str | None = None,
    ) -> None:
        self.names = names or Names()
        self.local_ip = local_ip
        self.physical_interface = physical_interface
        # FDB and ARP entries added, changed or removed so far (l2-population's cost)
        self.forwarding_changes = 0

    @classmethod
    def from_config(cls, config: DriverConfig) -> LinuxBridgeL2:
        return cls(
            config.names,
            local_ip=config.local_ip,
            physical_interface=config.physical_interface,
        )

    def device_exists(self, name: str) -> bool:
        return netlink.index(name) is not None

    def ensure_network(self, spec: NetworkSpec) -> str:
        bridge = self.names.bridge(spec.network_id)
        netlink.ensure_link(bridge, "bridge")
        netlink.set_up(bridge, mtu=spec.mtu)
        uplink = self._ensure_uplink(spec)
        if uplink:
            netlink.set_link(uplink, master=netlink.index(bridge))
            netlink.set_up(uplink, mtu=spec.mtu)
        return bridge

    def _ensure_uplink(self, spec: NetworkSpec) -> str | None:
        kind = spec.segmentation_type
        if kind == "local":
            return None
        if kind == "vxlan":
            if spec.segmentation_id is None or not self.local_ip:
                raise DriverError(f"vxlan network {spec.network_id} needs a VNI and local_ip")
            name = self.names.vxlan(spec.segmentation_id)
            populated = spec.peers is not None
            flags = {"learning": int(not populated), "proxy": int(populated)}
            have = netlink.vxlan_flags(name)
            if have is not None and have != flags:
                netlink.delete_link(name)  # made before l2-population, or the other way
            index = netlink.ensure_link(
                name,
                "vxlan",
                vxlan_id=spec.segmentation_id,
                vxlan_local=self.local_ip,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=flags["learning"],
                vxlan_proxy=flags["proxy"],
            )
            if spec.peers is not None:
                self.forwarding_changes += netlink.sync_forwarding(
                    index, *forwarding_entries(spec.peers)
                )
            return name
        if not self.physical_interface:
            raise DriverError(f"{kind} network {spec.network_id} needs physical_interface")
        if kind == "flat":
            return self.physical_interface
        if spec.segmentation_id is None:
            raise DriverError(f"vlan network {spec.network_id} needs a VLAN id")
        # 8021q devices: "<phys>.<vid>" truncated is ambiguous, so derive from the network id
        name = self.names._dev("vl", spec.network_id)
        parent = netlink.index(self.physical_interface)
        netlink.ensure_link(name, "vlan", link=parent, vlan_id=spec.segmentation_id)
        return name

    def delete_network(self, network_id: str) -> None:
        bridge = self.names.bridge(network_id)
        existing = netlink.links()
        if bridge in existing:
            idx = existing[bridge]["index"]
            for name, link in existing.items():
                # vxlan/vlan uplinks are ours; a flat physical interface is only released
                if link["master"] == idx and name.startswith(self._uplink_prefixes()):
                    netlink.delete_link(name)
                elif link["master"] == idx and name == self.physical_interface:
                    netlink.set_link(name, master=0)
        netlink.delete_link(bridge)

    def plug_port(self, spec: PortSpec) -> None:
        device = spec.device or self.names.port_device(spec.port_id)
        bridge = netlink.index(self.names.bridge(spec.network_id))
        if bridge is None:
            raise DriverError(f"plug {device}: network {spec.network_id} has no bridge")
        netlink.disable_ipv6(device)
        netlink.set_link(device, master=bridge)
        netlink.set_up(device)

    def unplug_port(self, port_id: str) -> None:
        device = self.names.port_device(port_id)
        if netlink.index(device) is not None:
            netlink.set_link(device, master=0, state="down")

    def _uplink_prefixes(self) -> tuple[str, ...]:
        return (self.names.prefix + "vxlan-", self.names.prefix + "vl")

    def tunnel_entries(self) -> Mapping[str, frozenset[str]]:
        """Each VXLAN uplink's entries: ``"<mac> <vtep>"`` and ``"arp <ip> <mac>"``."""
        head = self.names.prefix + "vxlan-"
        out = {}
        for name, link in netlink.links().items():
            if name.startswith(head) and link["kind"] == "vxlan":
                fdb, arp = netlink.forwarding(link["index"])
                entries = [f"{mac} {vtep}" for mac, vtep in fdb]
                entries += [f"arp {ip} {mac}" for ip, mac in arp.items()]
                out[name] = frozenset(entries)
        return out

    def list_owned(self) -> frozenset[str]:
        """Bridges and uplinks; port taps belong to the hypervisor, DHCP taps to DhcpDriver."""
        prefixes = (self.names.prefix + "brq", *self._uplink_prefixes())
        return frozenset(n for n in netlink.links() if n.startswith(prefixes))
