"""Libvirt domain XML from typed dataclasses, rendered with ElementTree.

Building the document element by element keeps every value escaped and every shape
checked by the type checker; nothing is glued together as text.

    dom = DomainDef(name="stackling-1f2e", uuid="1f2e…", vcpus=1, memory_mib=128,
                    os=OsDef(kernel="/b/k", initrd="/b/r", cmdline="console=ttyS0"),
                    disks=[FileDisk("/i/1f2e/disk", "qcow2", "vda")],
                    interfaces=[BridgeInterface("fa:16:3e:00:00:01", "brq1", "tap1")],
                    console_log="/i/1f2e/console.log")
    xml_text = render(dom)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

METADATA_NS = "https://stackling.dev/xmlns/libvirt/instance/1.0"
ET.register_namespace("stackling", METADATA_NS)


@dataclass(frozen=True)
class OsDef:
    """Boot from the first disk, or directly from a kernel (and initrd) when given."""

    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    arch: str = "x86_64"


@dataclass(frozen=True)
class FileDisk:
    path: str
    format: str  # "qcow2" | "raw"
    target: str  # "vda"
    readonly: bool = False
    serial: str | None = None


@dataclass(frozen=True)
class IscsiDisk:
    """A LUN reached by QEMU's own iSCSI initiator (no kernel initiator on the host)."""

    iqn: str
    lun: int
    host: str
    port: int
    target: str
    volume_id: str
    auth_username: str | None = None
    secret_usage: str | None = None  # the libvirt secret holding the CHAP password
    # The initiator name QEMU logs in with: the one the target's ACL admits.
    initiator: str | None = None

    @property
    def alias(self) -> str:
        # "ua-" marks a user alias: libvirt keeps it, so detach finds the disk by volume.
        return "ua-" + self.volume_id


@dataclass(frozen=True)
class BridgeInterface:
    mac: str
    bridge: str
    tap: str
    mtu: int = 1500
    model: str = "virtio"


@dataclass(frozen=True)
class DomainDef:
    name: str
    uuid: str
    vcpus: int
    memory_mib: int
    os: OsDef
    virt_type: str = "qemu"  # "kvm" in production, "test" on test:///default
    disks: list[FileDisk | IscsiDisk] = field(default_factory=list)
    interfaces: list[BridgeInterface] = field(default_factory=list)
    console_log: str | None = None
    server_id: str = ""
    generation: int = 0


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def disk_element(disk: FileDisk | IscsiDisk) -> ET.Element:
    """One ``<disk>``; also what attach/detach send for a single device."""
    if isinstance(disk, FileDisk):
        el = ET.Element("disk", {"type": "file", "device": "disk"})
        _sub(el, "driver", name="qemu", type=disk.format, cache="none")
        _sub(el, "source", file=disk.path)
        _sub(el, "target", dev=disk.target, bus="virtio")
        if disk.readonly:
            _sub(el, "readonly")
        if disk.serial:
            _sub(el, "serial", disk.serial)
        return el
    el = ET.Element("disk", {"type": "network", "device": "disk"})
    _sub(el, "driver", name="qemu", type="raw", cache="none")
    if disk.auth_username and disk.secret_usage:
        auth = _sub(el, "auth", username=disk.auth_username)
        _sub(auth, "secret", type="iscsi", usage=disk.secret_usage)
    source = _sub(el, "source", protocol="iscsi", name=f"{disk.iqn}/{disk.lun}")
    _sub(source, "host", name=disk.host, port=str(disk.port))
    if disk.initiator:
        _sub(_sub(source, "initiator"), "iqn", name=disk.initiator)
    _sub(el, "target", dev=disk.target, bus="virtio")
    _sub(el, "serial", disk.volume_id[:20])
    _sub(el, "alias", name=disk.alias)
    return el


def _os(parent: ET.Element, dom: DomainDef) -> None:
    os_el = _sub(parent, "os")
    _sub(os_el, "type", "hvm", arch=dom.os.arch)
    if dom.os.kernel:
        _sub(os_el, "kernel", dom.os.kernel)
        if dom.os.initrd:
            _sub(os_el, "initrd", dom.os.initrd)
        if dom.os.cmdline:
            _sub(os_el, "cmdline", dom.os.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")


def interface_element(nic: BridgeInterface) -> ET.Element:
    """One ``<interface>``; also what a NIC hot-plug sends."""
    el = ET.Element("interface", {"type": "bridge"})
    _sub(el, "mac", address=nic.mac)
    _sub(el, "source", bridge=nic.bridge)
    _sub(el, "target", dev=nic.tap)
    _sub(el, "model", type=nic.model)
    _sub(el, "mtu", size=str(nic.mtu))
    return el


def _serial(parent: ET.Element, log_path: str | None) -> None:
    # A pty whose output virtlogd also writes to a file: console_output reads the file.
    serial = _sub(parent, "serial", type="pty")
    if log_path:
        _sub(serial, "log", file=log_path, append="off")
    _sub(serial, "target", port="0")
    console = _sub(parent, "console", type="pty")
    _sub(console, "target", type="serial", port="0")


def build(dom: DomainDef) -> ET.Element:
    root = ET.Element("domain", {"type": dom.virt_type})
    _sub(root, "name", dom.name)
    _sub(root, "uuid", dom.uuid)
    meta = _sub(root, "metadata")
    inst = _sub(meta, f"{{{METADATA_NS}}}instance")
    _sub(inst, f"{{{METADATA_NS}}}server", id=dom.server_id, generation=str(dom.generation))
    _sub(root, "memory", str(dom.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(dom.vcpus))
    _os(root, dom)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    devices = _sub(root, "devices")
    for disk in dom.disks:
        devices.append(disk_element(disk))
    for nic in dom.interfaces:
        devices.append(interface_element(nic))
    _serial(devices, dom.console_log)
    _sub(devices, "memballoon", model="none")
    return root


def render(dom: DomainDef) -> str:
    return to_text(build(dom))


def to_text(el: ET.Element) -> str:
    return ET.tostring(el, encoding="unicode")


def secret_xml(usage: str, description: str) -> str:
    """A private, persistent libvirt secret of usage ``iscsi`` named ``usage``."""
    root = ET.Element("secret", {"ephemeral": "no", "private": "yes"})
    _sub(root, "description", description)
    usage_el = _sub(root, "usage", type="iscsi")
    _sub(usage_el, "target", usage)
    return to_text(root)


def disk_targets(domain_xml: str) -> dict[str, ET.Element]:
    """``{"vda": <disk>, ...}`` of a domain's current XML."""
    root = ET.fromstring(domain_xml)
    out: dict[str, ET.Element] = {}
    for disk in root.iterfind("./devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev"):
            out[target.get("dev", "")] = disk
    return out


def volume_disk(domain_xml: str, volume_id: str) -> ET.Element | None:
    """The ``<disk>`` of a volume, matched by its user alias or its serial."""
    for disk in disk_targets(domain_xml).values():
        alias = disk.find("alias")
        serial = disk.find("serial")
        if alias is not None and alias.get("name") == "ua-" + volume_id:
            return disk
        if disk.get("type") == "network" and serial is not None and serial.text == volume_id[:20]:
            return disk
    return None


def interface_by_mac(domain_xml: str, mac: str) -> ET.Element | None:
    """The ``<interface>`` with MAC ``mac`` (a port's MAC names its NIC in the guest)."""
    root = ET.fromstring(domain_xml)
    for nic in root.iterfind("./devices/interface"):
        found = nic.find("mac")
        if found is not None and found.get("address", "").lower() == mac.lower():
            return nic
    return None


def secret_usages(domain_xml: str) -> list[str]:
    root = ET.fromstring(domain_xml)
    return [
        s.get("usage", "")
        for s in root.iterfind("./devices/disk/auth/secret")
        if s.get("type") == "iscsi" and s.get("usage")
    ]
