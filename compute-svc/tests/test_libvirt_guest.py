"""The stackling-tiny guest really boots through LibvirtDriver on QEMU (TCG).

A bridge with dnsmasq (both with a random prefix) stands in for the network the network
agent would bind; the guest takes DHCP there, mounts its config drive and runs the
server's user_data, and the console log read through ``console_output`` shows all of it.
Then: stop, a CHAP volume attached and detached while stopped (its libvirt secret made
and removed), destroy. A second guest gets a CHAP-protected tgt LUN hot-plugged, writes a
pattern that lands in the target's backing file, and lets it go on hot-unplug. A third
gets a NIC on a second bridge hot-plugged and unplugged, seen by libvirt and the guest.
Nothing with the prefix is left (domains, secrets, files, bridges, taps, tgt target and
account).
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from pyroute2 import IPRoute
from virt_fixtures import (
    URI,
    instances_dir,
    leftovers,
    owned_secrets,
    prepare_guest,
    server,
    sweep,
    tiny_image,
    unique_prefix,
)

from compute_svc.drivers.base import IscsiConnection, NicSpec, ServerSpec, VolumeSpec
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.drivers.libvirt.driver import LibvirtDriver, VirtError


@pytest.fixture(scope="module", name="guest_dir")
def guest_dir_fixture() -> Path:
    """The tiny guest, built (or found up to date) by the project's own script."""
    return prepare_guest(("dnsmasq", "virsh"))


@dataclass
class Lab:
    prefix: str
    root: Path
    driver: LibvirtDriver
    bridge: str
    subnet: str  # "10.213.N"


def _make_bridge(name: str, address: str) -> None:
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        index = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=index, address=address, prefixlen=24)
        ipr.link("set", index=index, state="up")


def _drop_bridge(name: str) -> None:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            ipr.link("del", index=found[0])


def _links(prefix: str) -> list[str]:
    with IPRoute() as ipr:
        names = [link.get("ifname") for link in ipr.get_links()]
    return sorted(n for n in names if n and n.startswith(prefix))


@pytest.fixture(name="lab")
def lab_fixture(guest_dir: Path) -> Iterator[Lab]:
    prefix = unique_prefix()
    root = instances_dir(prefix)
    bridge = prefix + "br"
    subnet = f"10.213.{secrets.randbelow(200) + 20}"
    driver = LibvirtDriver(
        uri=URI, virt_type="qemu", prefix=prefix, instances_dir=root / "inst", shutdown_timeout=0
    )
    dnsmasq: subprocess.Popen[bytes] | None = None
    try:
        _make_bridge(bridge, f"{subnet}.1")
        dnsmasq = subprocess.Popen(
            [
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--user=root",
                f"--interface={bridge}",
                "--bind-interfaces",
                "--except-interface=lo",
                f"--dhcp-range={subnet}.10,{subnet}.50,255.255.255.0,1h",
                f"--dhcp-leasefile={root}/leases",
                f"--pid-file={root}/dnsmasq.pid",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield Lab(prefix, root, driver, bridge, subnet)
    finally:
        driver.close()
        left = leftovers(URI, prefix, root / "inst")
        sweep(URI, prefix, root / "inst")
        if dnsmasq is not None:
            dnsmasq.send_signal(signal.SIGTERM)
            dnsmasq.wait(timeout=10)
        _drop_bridge(bridge)
        links = _links(prefix)
        shutil.rmtree(root, ignore_errors=True)
        assert left == {"domains": [], "secrets": [], "files": []}, left
        assert links == [], links


def _wait_console(driver: LibvirtDriver, server_id: str, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = driver.console_output(server_id)
        if marker in out or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


@pytest.mark.timeout(240)
def test_tiny_guest_boots_takes_dhcp_and_runs_user_data(lab: Lab, guest_dir: Path) -> None:
    token = secrets.token_hex(6)
    user_data = (
        "#!/bin/sh\n"
        f"echo marker-{token}\n"
        'grep -o \'"uuid": "[^"]*"\' /mnt/config/openstack/latest/meta_data.json\n'
    ).encode()
    nic = {
        "port_id": "p-" + token,
        "mac": "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)),
        "bridge": lab.bridge,
        "mtu": 1500,
        "device": lab.prefix + "t0",
    }
    payload = server(tiny_image(guest_dir), user_data=user_data, nics=[nic])
    spec = ServerSpec.from_wire(payload)
    sid = spec.server_id
    started = time.monotonic()
    info = lab.driver.spawn(spec)
    assert info.power_state == "running"
    assert lab.driver.spawn(spec) == info  # a repeat changes nothing
    _wait_console(lab.driver, sid, "stackling-guest: ip ", timeout=150)
    to_ip = time.monotonic() - started
    out = _wait_console(lab.driver, sid, "stackling-guest: user-data exit", timeout=60)
    elapsed = time.monotonic() - started
    assert "stackling-guest: config-drive vdb" in out, out
    assert f"stackling-guest: ip {lab.subnet}." in out, out
    assert f"marker-{token}" in out, out
    assert f'"uuid": "{sid}"' in out, out
    assert "stackling-guest: user-data exit 0" in out, out
    print(f"spawn -> DHCP address {to_ip:.1f}s, -> user-data done {elapsed:.1f}s\n{out}")
    tail = lab.driver.console_output(sid, length=1)
    assert tail.strip() == "stackling-guest: user-data exit 0"

    assert lab.driver.power(sid, "stop").power_state == "shutdown"
    chap = IscsiConnection(
        "iqn.2026-01.dev.stackling:" + token, "127.0.0.1:3260", 1, "chap-" + token, "pw-" + token
    )
    volume = VolumeSpec("vol-" + token, chap)
    assert lab.driver.attach_volume(sid, volume) == "vdc"  # vda root, vdb config drive
    assert lab.driver.attach_volume(sid, volume) == "vdc"
    usage = f"{lab.prefix}iscsi-vol-{token}"
    assert owned_secrets(URI, lab.prefix) == [usage]
    dom = lab.driver.conn().lookupByName(info.domain)
    disk = dx.volume_disk(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), volume.volume_id)
    assert disk is not None and disk.find("auth").get("username") == "chap-" + token
    assert disk.find("auth/secret").get("usage") == usage  # the password stays in libvirt
    lab.driver.detach_volume(sid, volume.volume_id)
    assert owned_secrets(URI, lab.prefix) == []

    lab.driver.destroy(sid)
    lab.driver.destroy(sid)
    assert leftovers(URI, lab.prefix, lab.root / "inst")["domains"] == []
    assert not lab.driver.store.server_dir(sid).exists()
    assert _links(lab.prefix) == [lab.bridge]  # the tap went with the domain


def _tgtadm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tgtadm", "--lld", "iscsi", *args], capture_output=True, text=True, timeout=30, check=check
    )


@pytest.fixture(name="chap_target")
def chap_target_fixture(lab: Lab) -> Iterator[tuple[IscsiConnection, Path]]:
    """A tgt iSCSI target with CHAP over a 16 MiB file, removed afterwards."""
    if (
        shutil.which("tgtadm") is None
        or subprocess.run(["pgrep", "-x", "tgtd"], stdout=subprocess.DEVNULL).returncode
    ):
        pytest.skip("tgtd is not running")
    backing = lab.root / "volume.img"
    with backing.open("wb") as f:
        f.truncate(16 * 1024**2)
    token = lab.prefix.rstrip("-")
    iqn = f"iqn.2026-01.dev.stackling:{token}"
    user, password = f"{token}-user", secrets.token_hex(8)
    tid = None
    try:
        for _ in range(20):
            candidate = str(secrets.randbelow(30000) + 2000)
            if _tgtadm("--op", "new", "--mode", "target", "--tid", candidate, "-T", iqn,
                       check=False).returncode == 0:  # fmt: skip
                tid = candidate
                break
        assert tid is not None, "no free tgt target id"
        _tgtadm(
            "--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun", "1", "-b", str(backing)
        )
        _tgtadm("--op", "bind", "--mode", "target", "--tid", tid, "-I", "ALL")
        _tgtadm("--op", "new", "--mode", "account", "--user", user, "--password", password)
        _tgtadm("--op", "bind", "--mode", "account", "--tid", tid, "--user", user)
        yield IscsiConnection(iqn, "127.0.0.1:3260", 1, user, password), backing
    finally:
        if tid is not None:
            _tgtadm("--op", "delete", "--mode", "target", "--tid", tid, "--force", check=False)
        _tgtadm("--op", "delete", "--mode", "account", "--user", user, check=False)


@pytest.mark.timeout(240)
def test_chap_volume_hot_plugs_into_a_running_guest(
    lab: Lab, guest_dir: Path, chap_target: tuple[IscsiConnection, Path]
) -> None:
    connection, backing = chap_target
    pattern = "pattern-" + secrets.token_hex(6)
    user_data = (
        "#!/bin/sh\n"
        "i=0\n"
        "while [ ! -b /dev/vdc ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done\n"
        f"echo {pattern} | dd of=/dev/vdc bs=512 conv=sync,fsync 2>/dev/null && echo wrote-vdc\n"
    ).encode()
    nic = {
        "port_id": "p-" + pattern,
        "mac": "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)),
        "bridge": lab.bridge,
        "device": lab.prefix + "t1",
    }
    spec = ServerSpec.from_wire(server(tiny_image(guest_dir), user_data=user_data, nics=[nic]))
    sid = spec.server_id
    lab.driver.spawn(spec)
    out = _wait_console(lab.driver, sid, "stackling-guest: user-data start", timeout=150)
    assert "user-data start" in out, out

    volume = VolumeSpec("vol-" + pattern, connection)
    assert lab.driver.attach_volume(sid, volume) == "vdc"
    out = _wait_console(lab.driver, sid, "wrote-vdc", timeout=60)
    assert "wrote-vdc" in out, out
    assert backing.read_bytes()[:512].startswith(pattern.encode() + b"\n")
    assert owned_secrets(URI, lab.prefix) == [f"{lab.prefix}iscsi-{volume.volume_id}"]

    lab.driver.detach_volume(sid, volume.volume_id)  # waits until the guest let it go
    dom = lab.driver.conn().lookupByName(lab.driver.domain_name(sid))
    assert dx.volume_disk(dom.XMLDesc(0), volume.volume_id) is None
    assert owned_secrets(URI, lab.prefix) == []
    lab.driver.destroy(sid)


def _mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


@pytest.mark.timeout(120)
def test_nic_hot_plugs_into_a_running_guest_on_a_second_network(lab: Lab, guest_dir: Path) -> None:
    """The port's NIC goes into the running domain (live and persistent XML, with the
    port's MAC, on the second network's bridge), the guest sees it as eth1; after the
    detach the domain, the guest and the host have no trace of it."""
    second = lab.prefix + "b2"
    user_data = (
        b"#!/bin/sh\n"
        b'w() { i=0; while [ $i -lt 300 ] && eval "$1"; do sleep 0.1; i=$((i+1)); done; }\n'
        b"w '[ ! -e /sys/class/net/eth1 ]'\n"
        b"echo nic-up $(cat /sys/class/net/eth1/address)\n"
        b"w '[ -e /sys/class/net/eth1 ]'\n"
        b"echo nic-gone\n"
    )
    first = {"port_id": "p1", "mac": _mac(), "bridge": lab.bridge, "device": lab.prefix + "t2"}
    spec = ServerSpec.from_wire(server(tiny_image(guest_dir), user_data=user_data, nics=[first]))
    sid = spec.server_id
    nic = NicSpec(port_id="p2", mac=_mac(), bridge=second, device=lab.prefix + "t3")
    _make_bridge(second, f"10.214.{secrets.randbelow(200) + 20}.1")
    try:
        started = time.monotonic()
        lab.driver.spawn(spec)
        out = _wait_console(lab.driver, sid, "stackling-guest: user-data start", timeout=60)
        assert "user-data start" in out, out

        assert lab.driver.attach_interface(sid, nic) is True
        assert lab.driver.attach_interface(sid, nic) is False  # a repeat changes nothing
        dom = lab.driver.conn().lookupByName(lab.driver.domain_name(sid))
        live = dx.interface_by_mac(dom.XMLDesc(0), nic.mac)
        assert live is not None, dom.XMLDesc(0)
        assert live.find("source").get("bridge") == second  # type: ignore[union-attr]
        assert live.find("target").get("dev") == nic.tap()  # type: ignore[union-attr]
        assert live.find("model").get("type") == "virtio"  # type: ignore[union-attr]
        persistent = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert dx.interface_by_mac(persistent, nic.mac) is not None
        assert nic.tap() in _links(lab.prefix)
        out = _wait_console(lab.driver, sid, "nic-up", timeout=30)
        assert f"nic-up {nic.mac}" in out, out

        lab.driver.detach_interface(sid, nic)  # waits until the guest let it go
        assert dx.interface_by_mac(dom.XMLDesc(0), nic.mac) is None
        assert dx.interface_by_mac(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), nic.mac) is None
        assert dx.interface_by_mac(dom.XMLDesc(0), first["mac"]) is not None  # the first stays
        assert nic.tap() not in _links(lab.prefix)
        out = _wait_console(lab.driver, sid, "nic-gone", timeout=30)
        assert "nic-gone" in out, out
        lab.driver.detach_interface(sid, nic)  # a repeat: nothing to do
        print(f"boot, hot-plug and unplug of a NIC: {time.monotonic() - started:.1f}s")
        lab.driver.destroy(sid)
    finally:
        _drop_bridge(second)


@pytest.mark.timeout(180)
def test_disk_image_boots_from_its_qcow2_overlay(lab: Lab, guest_dir: Path) -> None:
    """The disk-boot path: SYSLINUX on the image's disk, under a per-server overlay."""
    if not (guest_dir / "disk.qcow2").exists():
        pytest.skip("disk.qcow2 not built (syslinux, mtools, dosfstools missing)")
    token = secrets.token_hex(6)
    image = {
        "id": "tiny-disk-" + token,
        "disk_format": "qcow2",
        "path": str(guest_dir / "disk.qcow2"),
    }
    spec = ServerSpec.from_wire(server(image, user_data=f"echo disk-{token}\n".encode()))
    lab.driver.spawn(spec)
    out = _wait_console(lab.driver, spec.server_id, "stackling-guest: user-data exit", timeout=150)
    assert "SYSLINUX" in out, out  # booted from the disk, not from a kernel libvirt loaded
    assert "stackling-guest: config-drive vdb" in out, out
    assert f"disk-{token}" in out, out
    base = lab.driver.store.base_dir / image["id"]
    assert base.exists() and base.stat().st_size == (guest_dir / "disk.qcow2").stat().st_size
    lab.driver.destroy(spec.server_id)
    assert not lab.driver.store.server_dir(spec.server_id).exists()


def test_failed_spawn_releases_domain_disks_and_secrets(lab: Lab, guest_dir: Path) -> None:
    """QEMU cannot start (its bridge is missing): nothing the attempt made is left."""
    token = secrets.token_hex(6)
    nic = {"port_id": "p-" + token, "mac": "fa:16:3e:00:00:99", "bridge": lab.prefix + "nobr"}
    payload = server(tiny_image(guest_dir), nics=[nic])
    chap = {"target_iqn": "iqn.2026-01.dev.stackling:" + token, "target_portal": "127.0.0.1:3260",
            "auth_username": "u-" + token, "auth_password": "p-" + token}  # fmt: skip
    payload["volumes"] = [{"volume_id": "vol-" + token, "device": None, "connection": chap}]
    with pytest.raises(VirtError, match=lab.prefix + "nobr"):
        lab.driver.spawn(ServerSpec.from_wire(payload))
    assert leftovers(URI, lab.prefix, lab.root / "inst") == {
        "domains": [],
        "secrets": [],
        "files": [],
    }
