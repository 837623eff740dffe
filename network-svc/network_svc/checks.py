"""Host checks for the network agent: netns, bridges, veths, VXLAN, iptables, dnsmasq.

Kernel objects are only ever created inside a scratch namespace, so the host's own links,
rules and sysctls are never touched.

    >>> check_netns().status  # doctest: +SKIP
    <Status.OK: 'OK'>
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from common_rpc.cli import probe as _probe
from common_rpc.cli.probe import (
    CheckResult,
    ProbeFailed,
    Status,
    binary_check,
    find,
    netns_exec,
    run_ok,
    unique_name,
)

GROUP = "network"
BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
ROOT_FIX = "run as root on a kernel with network namespaces (CONFIG_NET_NS)"


@contextmanager
def scratch_netns() -> Iterator[str]:
    """Create a uniquely named network namespace; always remove it on exit."""
    name = unique_name()
    try:
        netns.create(name)
        yield name
    finally:
        if name in netns.listnetns():
            netns.remove(name)


def describe(exc: BaseException) -> str:
    """A one-line description, netlink errors with their code."""
    if isinstance(exc, NetlinkError):
        return f"netlink error {exc.code}: {exc.args[1] if len(exc.args) > 1 else exc}"
    return _probe.default_description(exc)


def attempt(
    name: str,
    group: str,
    probe: Callable[[], str],
    fix: str,
    on_failure: Status = Status.MISSING,
) -> CheckResult:
    """``probe.attempt`` that also turns a netlink error into a result."""
    return _probe.attempt(
        name, group, probe, fix, on_failure, errors=(NetlinkError,), describe=describe
    )


def check_iproute2(path: str | None = None) -> CheckResult:
    """The ``ip`` command, used to run iptables/sysctl inside router namespaces."""
    return binary_check("iproute2", GROUP, "ip", "apt-get install iproute2", path, "-V")


def check_netns() -> CheckResult:
    """A network namespace can be created, listed and removed."""

    def probe() -> str:
        with scratch_netns() as ns:
            if ns not in netns.listnetns():
                raise ProbeFailed(f"{ns} was created but is not listed")
        return "created and removed a scratch namespace"

    return attempt("netns", GROUP, probe, ROOT_FIX)


def check_bridge() -> CheckResult:
    """A Linux bridge can be created and brought up."""

    def probe() -> str:
        with scratch_netns() as ns, IPRoute(netns=ns) as ipr:
            bridge = unique_name()
            ipr.link("add", ifname=bridge, kind="bridge")
            ipr.link("set", index=ipr.link_lookup(ifname=bridge)[0], state="up")
        return "bridge created and brought up in a scratch namespace"

    return attempt("bridge", GROUP, probe, "load the bridge module (modprobe bridge)")


def check_veth() -> CheckResult:
    """A veth pair can be created and one end plugged into a bridge."""

    def probe() -> str:
        with scratch_netns() as ns, IPRoute(netns=ns) as ipr:
            bridge, end, peer = unique_name(), unique_name(), unique_name()
            ipr.link("add", ifname=bridge, kind="bridge")
            ipr.link("add", ifname=end, kind="veth", peer=peer)
            bridge_index = ipr.link_lookup(ifname=bridge)[0]
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], master=bridge_index, state="up")
        return "veth pair created, one end plugged into a bridge"

    return attempt("veth", GROUP, probe, "load the veth module (modprobe veth)")


def check_vxlan() -> CheckResult:
    """A VXLAN device can be created (VNI 42, UDP 4789)."""

    def probe() -> str:
        with scratch_netns() as ns, IPRoute(netns=ns) as ipr:
            ipr.link(
                "add",
                ifname=unique_name(),
                kind="vxlan",
                vxlan_id=42,
                vxlan_port=4789,
                vxlan_local="127.0.0.1",
            )
        return "VXLAN device (VNI 42, port 4789) created in a scratch namespace"

    return attempt("vxlan", GROUP, probe, "load the vxlan module (modprobe vxlan)")


def check_vlan() -> CheckResult:
    """An 802.1Q VLAN device can be created; optional, only ``vlan`` networks need it."""

    def probe() -> str:
        with scratch_netns() as ns, IPRoute(netns=ns) as ipr:
            end, peer = unique_name(), unique_name()
            ipr.link("add", ifname=end, kind="veth", peer=peer)
            parent = ipr.link_lookup(ifname=end)[0]
            ipr.link("add", ifname=unique_name(), kind="vlan", link=parent, vlan_id=10)
        return "802.1Q VLAN device created on a veth"

    result = attempt(
        "vlan-8021q",
        GROUP,
        probe,
        "modprobe 8021q (only networks of type vlan need it; bridge/VXLAN ones do not)",
        on_failure=Status.WARN,
    )
    if result.status is Status.WARN:
        detail = f"no 802.1Q VLAN device ({result.detail}): vlan networks unavailable"
        return CheckResult(result.name, GROUP, Status.WARN, detail, result.fix)
    return result


def check_ip_forward(path: str | None = None) -> CheckResult:
    """``net.ipv4.ip_forward`` can be set to 1 inside a namespace (router namespaces)."""
    sysctl = find("sysctl", path)
    if sysctl is None:
        return CheckResult(
            "ip-forward", GROUP, Status.MISSING, "sysctl not found", "apt-get install procps"
        )

    def probe() -> str:
        with scratch_netns() as ns:
            run_ok(netns_exec(ns, [sysctl, "-w", "net.ipv4.ip_forward=1"], path))
            value = run_ok(netns_exec(ns, [sysctl, "-n", "net.ipv4.ip_forward"], path))
        if value != "1":
            raise ProbeFailed(f"net.ipv4.ip_forward reads {value!r} after writing 1")
        return "net.ipv4.ip_forward=1 written and read back inside a scratch namespace"

    return attempt("ip-forward", GROUP, probe, ROOT_FIX)


def check_iptables(path: str | None = None) -> CheckResult:
    """iptables is installed and accepts a NAT rule inside a namespace."""
    fix = "apt-get install iptables"
    iptables = find("iptables", path)
    if iptables is None:
        return CheckResult("iptables", GROUP, Status.MISSING, "iptables not found in PATH", fix)

    def probe() -> str:
        nat_rule = ["-w", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"]
        with scratch_netns() as ns:
            run_ok(netns_exec(ns, [iptables, *nat_rule], path))
        return f"{iptables}: MASQUERADE rule accepted in a scratch namespace"

    return attempt("iptables", GROUP, probe, fix)


def check_br_netfilter(sysctl_file: Path = BR_NETFILTER) -> CheckResult:
    """Bridged traffic goes through iptables (needed for security groups on a bridge)."""
    name = "br-netfilter"
    if not sysctl_file.exists():
        return CheckResult(
            name, GROUP, Status.MISSING, f"{sysctl_file} absent", "modprobe br_netfilter"
        )
    value = sysctl_file.read_text().strip()
    if value != "1":
        return CheckResult(
            name,
            GROUP,
            Status.MISSING,
            f"bridge-nf-call-iptables = {value}: bridged traffic bypasses iptables",
            "sysctl -w net.bridge.bridge-nf-call-iptables=1",
        )
    return CheckResult(name, GROUP, Status.OK, "bridge-nf-call-iptables = 1")


def check_physdev(path: str | None = None) -> CheckResult:
    """iptables accepts the physdev + conntrack rule used to filter a bridge port."""
    name = "iptables-physdev"
    fix = "apt-get install iptables; modprobe xt_physdev br_netfilter"
    iptables = find("iptables", path)
    if iptables is None:
        return CheckResult(name, GROUP, Status.MISSING, "iptables not found in PATH", fix)

    def probe() -> str:
        chain = unique_name().upper()
        rule = [
            "-m", "physdev", "--physdev-in", unique_name(), "--physdev-is-bridged",
            "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN",
        ]  # fmt: skip
        with scratch_netns() as ns:
            run_ok(netns_exec(ns, [iptables, "-w", "-N", chain], path))
            run_ok(netns_exec(ns, [iptables, "-w", "-A", chain, *rule], path))
        return "physdev --physdev-is-bridged with conntrack accepted in a scratch namespace"

    return attempt(name, GROUP, probe, fix)


def check_dnsmasq(path: str | None = None) -> CheckResult:
    """dnsmasq, which serves DHCP on each tenant network."""
    return binary_check("dnsmasq", GROUP, "dnsmasq", "apt-get install dnsmasq-base", path)


# What `stackling doctor` runs for the network group (entry point `stackling.doctor`).
CHECKS: list[Callable[[], CheckResult]] = [
    check_iproute2,
    check_netns,
    check_bridge,
    check_veth,
    check_vxlan,
    check_vlan,
    check_ip_forward,
    check_iptables,
    check_br_netfilter,
    check_physdev,
    check_dnsmasq,
]
