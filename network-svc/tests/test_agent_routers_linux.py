"""LinuxRouter on the real kernel: repeated ensure() changes nothing, a narrower spec
removes legs, floating IPs and SNAT, static routes (extraroute) come and go, delete()
leaves nothing (the lab checks the host)."""

from __future__ import annotations

import socket

from driver_fixtures import Lab, lab_fixture
from pyroute2 import NetNS

from network_svc.drivers.base import FloatingIpSpec, RouterLeg, RouterSpec
from network_svc.drivers.linux import netlink, priv
from network_svc.drivers.linux.router import LinuxRouter

__all__ = ["lab_fixture"]  # the `lab` fixture is used by name


def _nat(namespace: str) -> list[str]:
    out = priv.run(priv.in_netns(namespace, ["iptables", "-t", "nat", "-S"]), timeout=15)
    return [line for line in out.splitlines() if line.startswith("-A")]


def _addresses(namespace: str) -> set[str]:
    out = priv.run(priv.in_netns(namespace, ["ip", "-4", "-o", "addr", "show"]), timeout=15)
    return {line.split()[3] for line in out.splitlines()}


def test_router_ensure_is_idempotent_and_converges(lab: Lab) -> None:
    inside = lab.network("10.91.0.0/24")
    outside = lab.network("10.93.0.0/24")
    router = LinuxRouter(lab.names)
    leg = RouterLeg("p-in-0001", inside.network_id, "fa:16:3e:91:00:01", ("10.91.0.1/24",), 1450)
    gw = RouterLeg("p-gw-0001", outside.network_id, "fa:16:3e:93:00:05", ("10.93.0.5/24",), 1450)
    fip = FloatingIpSpec("10.93.0.7", "10.91.0.10")
    spec = RouterSpec("r-0001", (leg,), gw, "10.93.0.1", True, (fip,))

    namespace = router.ensure(spec)
    first = (netlink.links(namespace), _nat(namespace), _addresses(namespace))
    assert router.ensure(spec) == namespace
    again = (netlink.links(namespace), _nat(namespace), _addresses(namespace))
    assert [sorted(x) for x in first[1:]] == [sorted(x) for x in again[1:]]
    assert first[0].keys() == again[0].keys()
    _host, inner = lab.names.router_legs("p-in-0001")
    host_gw, inner_gw = lab.names.router_legs("p-gw-0001", gateway=True)
    assert {"10.91.0.1/24", "10.93.0.5/24", "10.93.0.7/32"} <= again[2]
    assert again[0][inner]["address"] == "fa:16:3e:91:00:01"
    nat = " ".join(again[1])
    assert "-j DNAT --to-destination 10.91.0.10" in nat
    assert f"-s 10.91.0.0/24 -o {inner_gw} -j SNAT --to-source 10.93.0.5" in nat
    hairpin = (
        f"-s 10.91.0.0/24 -o {inner} -m conntrack --ctstate DNAT -j SNAT --to-source 10.91.0.1"
    )
    assert hairpin in nat
    assert len(again[1]) == 5  # DNAT x2, SNAT for the floating IP, hairpin, the subnet's SNAT
    bridge = netlink.links()[lab.names.bridge(outside.network_id)]["index"]
    assert netlink.links()[host_gw]["master"] == bridge
    forward = priv.run(priv.in_netns(namespace, ["sysctl", "-n", "net.ipv4.ip_forward"]))
    assert forward.strip() == "1"

    # No SNAT, no floating IP, no interface: all of it goes, the gateway stays.
    router.ensure(RouterSpec("r-0001", (), gw, "10.93.0.1", False, ()))
    assert _nat(namespace) == []
    assert _addresses(namespace) == {"127.0.0.1/8", "10.93.0.5/24"}
    assert inner not in netlink.links(namespace) and _host not in netlink.links()

    assert router.list_owned() == {namespace}
    router.delete("r-0001")
    router.delete("r-0001")
    assert router.list_owned() == frozenset()
    assert host_gw not in netlink.links()


def kernel_routes(namespace: str) -> dict[str, list[str]]:
    """Every IPv4 route of the namespace's main table, read with pyroute2 (what
    ``ip netns exec <ns> ip route`` shows): destination -> its gateways (none: on-link)."""
    out: dict[str, list[str]] = {}
    ns = NetNS(namespace)
    try:
        for msg in ns.get_routes(family=socket.AF_INET, table=254):
            dst = f"{msg.get('RTA_DST') or '0.0.0.0'}/{msg['dst_len']}"
            hops = [msg.get("RTA_GATEWAY")] + [
                h.get("RTA_GATEWAY") for h in msg.get("RTA_MULTIPATH") or ()
            ]
            out[dst] = sorted(h for h in hops if h)
    finally:
        ns.close()
    return out


def test_router_static_routes_follow_the_spec(lab: Lab) -> None:
    inside = lab.network("10.94.0.0/24")
    outside = lab.network("10.95.0.0/24")
    router = LinuxRouter(lab.names)
    leg = RouterLeg("p-in-0002", inside.network_id, "fa:16:3e:94:00:01", ("10.94.0.1/24",))
    gw = RouterLeg("p-gw-0002", outside.network_id, "fa:16:3e:95:00:05", ("10.95.0.5/24",))
    routes = (
        ("10.200.0.0/16", "10.94.0.254"),
        ("10.201.0.0/24", "10.94.0.253"),
        ("10.201.0.0/24", "10.95.0.254"),  # two nexthops: one multipath route
        ("10.202.0.0/16", "10.99.0.1"),  # no leg reaches it: not made (the kernel refuses)
    )
    spec = RouterSpec("r-0002", (leg,), gw, "10.95.0.1", True, (), routes)

    namespace = router.ensure(spec)
    table = kernel_routes(namespace)
    assert table["10.200.0.0/16"] == ["10.94.0.254"]
    assert table["10.201.0.0/24"] == ["10.94.0.253", "10.95.0.254"]
    assert "10.202.0.0/16" not in table
    assert table["0.0.0.0/0"] == ["10.95.0.1"]  # the gateway's default route stays
    assert netlink.sync_static_routes(netlink.static_routes(namespace), namespace) == 0
    router.ensure(spec)
    assert kernel_routes(namespace) == table  # repeated: nothing changes

    # A route deleted behind the driver's back comes back; one no longer wanted goes.
    ns = NetNS(namespace)
    try:
        ns.route("del", dst="10.200.0.0/16", gateway="10.94.0.254")
    finally:
        ns.close()
    assert "10.200.0.0/16" not in kernel_routes(namespace)
    router.ensure(RouterSpec("r-0002", (leg,), gw, "10.95.0.1", True, (), routes[:1]))
    table = kernel_routes(namespace)
    assert table["10.200.0.0/16"] == ["10.94.0.254"] and "10.201.0.0/24" not in table

    # A static default route takes the place of the gateway's; without routes it returns.
    default = (("0.0.0.0/0", "10.94.0.254"),)
    router.ensure(RouterSpec("r-0002", (leg,), gw, "10.95.0.1", True, (), default))
    assert kernel_routes(namespace)["0.0.0.0/0"] == ["10.94.0.254"]
    router.ensure(RouterSpec("r-0002", (leg,), gw, "10.95.0.1", True, ()))
    table = kernel_routes(namespace)
    assert table["0.0.0.0/0"] == ["10.95.0.1"] and "10.200.0.0/16" not in table
    router.delete("r-0002")
    assert router.list_owned() == frozenset()
