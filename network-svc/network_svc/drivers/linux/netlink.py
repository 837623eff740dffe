"""Idempotent pyroute2 helpers; errno is translated here (EEXIST and ENODEV are fine).

Example::

    ensure_link("brq6f1c2d3e4a5", kind="bridge")
    ensure_veth("tap6f1c2d3e4a5", "ns-6f1c2d3e4a5")
    move_to_netns("ns-6f1c2d3e4a5", "qdhcp-6f1c…")
    set_up("ns-6f1c2d3e4a5", namespace="qdhcp-6f1c…")   # disables IPv6 first
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from network_svc.drivers.base import DriverError
from network_svc.drivers.linux import priv


@contextmanager
def _ipr(namespace: str | None) -> Iterator[Any]:
    ipr = NetNS(namespace) if namespace else IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _fail(op: str, what: str, exc: NetlinkError) -> DriverError:
    return DriverError(f"{op} {what}: {os.strerror(exc.code)} (errno {exc.code})")


def index(ifname: str, namespace: str | None = None) -> int | None:
    with _ipr(namespace) as ipr:
        found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def links(namespace: str | None = None) -> dict[str, dict[str, Any]]:
    """Name → {index, master, mtu, kind, up} for every link in a namespace."""
    out: dict[str, dict[str, Any]] = {}
    with _ipr(namespace) as ipr:
        for msg in ipr.get_links():
            info = msg.get("IFLA_LINKINFO")
            out[msg.get("ifname")] = {
                "index": msg["index"],
                "master": msg.get("master"),
                "mtu": msg.get("mtu"),
                "kind": info.get("IFLA_INFO_KIND") if info else None,
                "up": bool(msg["flags"] & 1),
                "address": msg.get("address"),
            }
    return out


def ensure_link(ifname: str, kind: str, namespace: str | None = None, **attrs: Any) -> int:
    with _ipr(namespace) as ipr:
        try:
            ipr.link("add", ifname=ifname, kind=kind, **attrs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _fail(f"create {kind}", ifname, exc) from exc
        return ipr.link_lookup(ifname=ifname)[0]


def ensure_veth(host_end: str, peer: str, peer_namespace: str | None = None) -> None:
    """Create a veth pair unless the host end exists (its peer may already be in a netns)."""
    if index(host_end) is not None:
        return
    if peer_namespace and index(peer, peer_namespace) is not None:
        delete_link(peer, peer_namespace)  # half-built pair from an earlier crash
    ensure_link(host_end, "veth", peer=peer)


def move_to_netns(ifname: str, namespace: str) -> None:
    if index(ifname, namespace) is not None:
        return
    with _ipr(None) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise DriverError(f"move {ifname} to {namespace}: no such device")
        try:
            ipr.link("set", index=found[0], net_ns_fd=namespace)
        except NetlinkError as exc:
            raise _fail("move to netns", ifname, exc) from exc


def set_link(ifname: str, namespace: str | None = None, **attrs: Any) -> None:
    with _ipr(namespace) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise DriverError(f"set {ifname}: no such device")
        try:
            ipr.link("set", index=found[0], **attrs)
        except NetlinkError as exc:
            raise _fail("set", ifname, exc) from exc


def rename_link(ifname: str, new_name: str, namespace: str | None = None) -> None:
    """Rename a link (it must be down)."""
    with _ipr(namespace) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise DriverError(f"rename {ifname}: no such device")
        try:
            ipr.link("set", index=found[0], ifname=new_name)
        except NetlinkError as exc:
            raise _fail("rename", ifname, exc) from exc


def disable_ipv6(ifname: str, namespace: str | None = None) -> None:
    if not os.path.exists("/proc/sys/net/ipv6"):
        return  # no IPv6 on this kernel: nothing to disable
    if namespace is None:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
        return
    key = f"net.ipv6.conf.{ifname}.disable_ipv6=1"
    priv.run(priv.in_netns(namespace, ["sysctl", "-q", "-w", key]), timeout=10)


def set_up(ifname: str, namespace: str | None = None, **attrs: Any) -> None:
    """Bring a link up; IPv6 is disabled before, so it never autoconfigures (host safety)."""
    disable_ipv6(ifname, namespace)
    set_link(ifname, namespace, state="up", **attrs)


def set_down(ifname: str, namespace: str | None = None) -> None:
    if index(ifname, namespace) is not None:
        set_link(ifname, namespace, state="down")


def delete_link(ifname: str, namespace: str | None = None) -> None:
    with _ipr(namespace) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return
        try:
            ipr.link("del", index=found[0])
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise _fail("delete", ifname, exc) from exc


def ensure_addresses(ifname: str, cidrs: list[str], namespace: str | None = None) -> None:
    """Make the IPv4 addresses of a link exactly `cidrs` (e.g. ["10.0.0.2/24"])."""
    want = {ipaddress.ip_interface(c) for c in cidrs}
    with _ipr(namespace) as ipr:
        idx = ipr.link_lookup(ifname=ifname)[0]
        have = {
            ipaddress.ip_interface(f"{a.get('address')}/{a['prefixlen']}")
            for a in ipr.get_addr(index=idx, family=2)
        }
        for extra in have - want:
            ipr.addr("del", index=idx, address=str(extra.ip), prefixlen=extra.network.prefixlen)
        for missing in want - have:
            ipr.addr("add", index=idx, address=str(missing.ip), prefixlen=missing.network.prefixlen)


def vxlan_flags(ifname: str) -> dict[str, int] | None:
    """A VXLAN device's ``learning`` and ``proxy`` flags; None if there is no such device."""
    with _ipr(None) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return None
        info = ipr.get_links(found[0])[0].get("IFLA_LINKINFO")
    data = (info.get("IFLA_INFO_DATA") if info else None) or {}
    return {
        "learning": int(data.get("IFLA_VXLAN_LEARNING") or 0),
        "proxy": int(data.get("IFLA_VXLAN_PROXY") or 0),
    }


NUD_PERMANENT = 0x80


def forwarding(index: int) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """A VXLAN device's remote FDB entries (mac, destination) and permanent ARP entries."""
    with _ipr(None) as ipr:
        fdb = {
            (str(m.get("NDA_LLADDR")).lower(), str(m.get("NDA_DST")))
            for m in ipr.fdb("dump", ifindex=index)
            if m["ifindex"] == index and m.get("NDA_DST")
        }
        arp = {
            str(m.get("NDA_DST")): str(m.get("NDA_LLADDR")).lower()
            for m in ipr.get_neighbours(ifindex=index, family=2)
            if m["ifindex"] == index and m["state"] & NUD_PERMANENT and m.get("NDA_LLADDR")
        }
    return fdb, arp


def sync_forwarding(index: int, fdb: set[tuple[str, str]], arp: dict[str, str]) -> int:
    """Make a VXLAN device's remote FDB and permanent ARP entries exactly these; returns how
    many entries changed (0 when it already matched)."""
    have_fdb, have_arp = forwarding(index)
    changed = 0
    with _ipr(None) as ipr:
        try:
            for mac, dst in sorted(have_fdb - fdb):
                ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)
                changed += 1
            for mac, dst in sorted(fdb - have_fdb):
                ipr.fdb("append", ifindex=index, lladdr=mac, dst=dst)
                changed += 1
            for ip in sorted(set(have_arp) - set(arp)):
                ipr.neigh("del", dst=ip, lladdr=have_arp[ip], ifindex=index)
                changed += 1
            for ip, mac in sorted(arp.items()):
                if have_arp.get(ip) != mac:
                    ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=index, state=NUD_PERMANENT)
                    changed += 1
        except NetlinkError as exc:
            raise _fail("forwarding entries of", f"device {index}", exc) from exc
    return changed


def ensure_netns(name: str) -> None:
    if name not in netns.listnetns():
        netns.create(name)


def remove_netns(name: str) -> None:
    if name in netns.listnetns():
        netns.remove(name)


def list_netns() -> list[str]:
    return list(netns.listnetns())


RTPROT_STATIC = 4  # the protocol our static routes carry: only these are ours to change
MAIN_TABLE = 254


def _hops(msg: Any) -> tuple[str, ...]:
    gateway = msg.get("RTA_GATEWAY")
    hops = [gateway] if gateway else [h.get("RTA_GATEWAY") for h in msg.get("RTA_MULTIPATH") or ()]
    return tuple(sorted((str(h) for h in hops if h), key=ipaddress.ip_address))


def static_routes(namespace: str | None = None) -> dict[str, tuple[str, ...]]:
    """The IPv4 static routes (protocol static, main table): destination -> nexthops."""
    with _ipr(namespace) as ipr:
        return {
            f"{m.get('RTA_DST') or '0.0.0.0'}/{m['dst_len']}": _hops(m)
            for m in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE)
            if m["proto"] == RTPROT_STATIC
        }


def sync_static_routes(want: dict[str, tuple[str, ...]], namespace: str | None = None) -> int:
    """Make the IPv4 static routes exactly ``want`` (several nexthops: one multipath
    route); how many routes changed."""
    have = static_routes(namespace)
    changed = 0
    with _ipr(namespace) as ipr:
        try:
            for dst in sorted(set(have) - set(want)):
                ipr.route("del", dst=dst, table=MAIN_TABLE, proto=RTPROT_STATIC)
                changed += 1
            for dst, hops in sorted(want.items()):
                if have.get(dst) == hops:
                    continue
                via: dict[str, Any] = {"gateway": hops[0]}
                if len(hops) > 1:
                    via = {"multipath": [{"gateway": h} for h in hops]}
                ipr.route("replace", dst=dst, table=MAIN_TABLE, proto=RTPROT_STATIC, **via)
                changed += 1
        except NetlinkError as exc:
            raise _fail("static routes in", namespace or "the host", exc) from exc
    return changed
