"""LinuxRouter: a network namespace per router, a veth leg per attached subnet, NAT in it.

Layout for router R (P = the Names prefix)::

    Pqrouter-<R>            namespace, net.ipv4.ip_forward=1
      Pqr<port>  <-veth->  Ptr<port>  on the subnet network's bridge, holds the gateway IP
      Pqg<port>  <-veth->  Ptg<port>  on the external network's bridge, holds the gateway
                                      IP and every floating IP (/32); default route out
      static routes (extraroute): protocol static, via nexthops on the legs' subnets
    nat table (rewritten whole, atomically, by iptables-restore inside the namespace):
      PREROUTING/OUTPUT  -d FIP -j DNAT --to-destination FIXED
      POSTROUTING        -s FIXED -o Pqg… -j SNAT --to-source FIP
      POSTROUTING        -s <subnet> -o Pqr… -m conntrack --ctstate DNAT
                           -j SNAT --to-source <the leg's IP>        (hairpin, see below)
      POSTROUTING        -s <internal subnet> -o Pqg… -j SNAT --to-source <gateway IP>

Hairpin: a guest that reaches a floating IP whose target is on its own subnet comes back
out of the leg it came in by; without the SNAT the target would answer it directly, from
its fixed IP, and the guest would drop the reply to a floating-IP request. As in
Neutron, such DNAT'd flows leave with the router's address on that subnet as source.

Every call makes the namespace match the spec and is idempotent; legs the spec no longer
has are deleted (their peers go with them).

    router = LinuxRouter(Names())
    router.ensure(RouterSpec(rid, interfaces=[RouterLeg(pid, net_id, mac, ("10.0.0.1/24",))]))
"""

from __future__ import annotations

import ipaddress

from network_svc.drivers.base import (
    DriverConfig,
    DriverError,
    RouterLeg,
    RouterSpec,
    static_routes,
)
from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.names import Names


def _v4(address: str) -> str:
    """An IPv4 address, checked: NAT rules reach iptables-restore as text."""
    value = ipaddress.ip_address(address)
    if value.version != 4:
        raise DriverError(f"router NAT is IPv4 only: {address}")
    return str(value)


def _hairpin(spec: RouterSpec, names: Names) -> list[str]:
    """SNAT to the leg's own address for DNAT'd flows that go back out of the same leg."""
    fixed = [ipaddress.ip_address(_v4(f.fixed_ip)) for f in spec.floating_ips]
    lines = []
    for leg in spec.interfaces:
        _host_end, inner = names.router_legs(leg.port_id)
        for cidr in leg.cidrs:
            address = ipaddress.ip_interface(cidr)
            if address.version == 4 and any(ip in address.network for ip in fixed):
                lines.append(
                    f"-A POSTROUTING -s {address.network} -o {inner} -m conntrack "
                    f"--ctstate DNAT -j SNAT --to-source {address.ip}"
                )
    return lines


def nat_rules(spec: RouterSpec, gateway_dev: str, names: Names | None = None) -> list[str]:
    """The namespace's whole nat table as iptables-restore input."""
    lines = ["*nat", *(f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "OUTPUT"))]
    lines.append(":POSTROUTING ACCEPT [0:0]")
    if spec.gateway is not None:
        lines += _hairpin(spec, names or Names())
        for fip in spec.floating_ips:
            public, fixed = _v4(fip.floating_ip), _v4(fip.fixed_ip)
            lines.append(f"-A PREROUTING -d {public}/32 -j DNAT --to-destination {fixed}")
            lines.append(f"-A OUTPUT -d {public}/32 -j DNAT --to-destination {fixed}")
            lines.append(
                f"-A POSTROUTING -s {fixed}/32 -o {gateway_dev} -j SNAT --to-source {public}"
            )
        gateway_ips = [ipaddress.ip_interface(c) for c in spec.gateway.cidrs]
        source = next((str(i.ip) for i in gateway_ips if i.version == 4), None)
        if spec.enable_snat and source:
            for leg in spec.interfaces:
                for cidr in leg.cidrs:
                    inside = ipaddress.ip_interface(cidr).network
                    if inside.version == 4:
                        lines.append(
                            f"-A POSTROUTING -s {inside} -o {gateway_dev} "
                            f"-j SNAT --to-source {source}"
                        )
    lines.append("COMMIT")
    return lines


class LinuxRouter:
    def __init__(self, names: Names | None = None) -> None:
        self.names = names or Names()

    @classmethod
    def from_config(cls, config: DriverConfig) -> LinuxRouter:
        return cls(config.names)

    def _leg_prefixes(self) -> tuple[str, str]:
        return self.names.prefix + "qr", self.names.prefix + "qg"

    def ensure(self, spec: RouterSpec) -> str:
        namespace = self.names.router_namespace(spec.router_id)
        netlink.ensure_netns(namespace)
        netlink.set_link("lo", namespace, state="up")
        sysctl = ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]
        priv.run(priv.in_netns(namespace, sysctl), timeout=10)
        wanted = {self._ensure_leg(namespace, leg, False, ()) for leg in spec.interfaces}
        gateway_dev = ""
        if spec.gateway is not None:
            floating = tuple(f"{_v4(f.floating_ip)}/32" for f in spec.floating_ips)
            gateway_dev = self._ensure_leg(namespace, spec.gateway, True, floating)
            wanted.add(gateway_dev)
        for name in netlink.links(namespace):
            if name.startswith(self._leg_prefixes()) and name not in wanted:
                netlink.delete_link(name, namespace)
        routes = static_routes(spec)
        if "0.0.0.0/0" not in routes:  # a static default route takes the gateway's place
            self._default_route(namespace, spec, gateway_dev)
        netlink.sync_static_routes(routes, namespace)
        restore = ["iptables-restore", "-w", "10"]
        # without --noflush: the nat table is replaced whole, in one transaction
        text = "\n".join(nat_rules(spec, gateway_dev, self.names)) + "\n"
        priv.run(priv.in_netns(namespace, restore), timeout=30, input=text)
        return namespace

    def _ensure_leg(
        self, namespace: str, leg: RouterLeg, gateway: bool, extra: tuple[str, ...]
    ) -> str:
        host_end, inner = self.names.router_legs(leg.port_id, gateway)
        bridge = netlink.index(self.names.bridge(leg.network_id))
        if bridge is None:
            raise DriverError(f"router leg {inner}: network {leg.network_id} has no bridge")
        if netlink.index(inner, namespace) is None:
            netlink.ensure_veth(host_end, inner, namespace)
            netlink.move_to_netns(inner, namespace)
        if netlink.links(namespace)[inner]["address"] != leg.mac.lower():
            netlink.set_link(inner, namespace, address=leg.mac.lower())
        netlink.set_up(inner, namespace, mtu=leg.mtu)
        netlink.ensure_addresses(inner, [*leg.cidrs, *extra], namespace)
        netlink.disable_ipv6(host_end)
        netlink.set_link(host_end, master=bridge)
        netlink.set_up(host_end, mtu=leg.mtu)
        return inner

    def _default_route(self, namespace: str, spec: RouterSpec, gateway_dev: str) -> None:
        if gateway_dev and spec.next_hop:
            argv = ["ip", "route", "replace", "default", "via", _v4(spec.next_hop)]
            priv.run(priv.in_netns(namespace, [*argv, "dev", gateway_dev]), timeout=10)
        else:
            argv = ["ip", "route", "del", "default"]
            priv.run(priv.in_netns(namespace, argv), timeout=10, check=False)

    def delete(self, router_id: str) -> None:
        """Remove the namespace; deleting each leg first takes its bridge end too."""
        namespace = self.names.router_namespace(router_id)
        if namespace not in netlink.list_netns():
            return
        for name in netlink.links(namespace):
            if name.startswith(self._leg_prefixes()):
                netlink.delete_link(name, namespace)
        netlink.remove_netns(namespace)

    def list_owned(self) -> frozenset[str]:
        head = self.names.router_namespace("")
        return frozenset(n for n in netlink.list_netns() if n.startswith(head))
