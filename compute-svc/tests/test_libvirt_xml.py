"""Domain XML, config drive and wire parsing: pure logic, no hypervisor."""

from __future__ import annotations

import base64
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from compute_svc.drivers.base import ConfigDriveSpec, IscsiConnection, NicSpec, ServerSpec
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.drivers.libvirt.config_drive import build_config_drive


def _domain() -> dx.DomainDef:
    return dx.DomainDef(
        name="stackling-s1",
        uuid="6f1c2b9e-0000-4000-8000-000000000001",
        vcpus=2,
        memory_mib=256,
        os=dx.OsDef(kernel="/b/k", initrd="/b/r", cmdline="console=ttyS0 a=<b&c>"),
        disks=[
            dx.FileDisk("/i/s1/disk", "qcow2", "vda"),
            dx.FileDisk("/i/s1/disk.config", "raw", "vdb", readonly=True, serial="config-2"),
            dx.IscsiDisk(
                iqn="iqn.2026-01.dev.stackling:v1",
                lun=1,
                host="127.0.0.1",
                port=3260,
                target="vdc",
                volume_id="v1",
                auth_username="chap-user",
                secret_usage="stackling-iscsi-v1",
            ),
        ],
        interfaces=[dx.BridgeInterface("fa:16:3e:00:00:01", "brq1", "tap1", mtu=1450)],
        console_log="/i/s1/console.log",
        server_id="s1",
        generation=3,
    )


def test_domain_xml_has_every_part_escaped_and_typed() -> None:
    root = ET.fromstring(dx.render(_domain()))
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "stackling-s1"
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "256"
    assert root.findtext("vcpu") == "2"
    assert root.findtext("os/kernel") == "/b/k" and root.findtext("os/initrd") == "/b/r"
    assert root.findtext("os/cmdline") == "console=ttyS0 a=<b&c>"  # escaped, then read back
    disks = dx.disk_targets(dx.render(_domain()))
    assert list(disks) == ["vda", "vdb", "vdc"]
    assert disks["vda"].find("driver").get("type") == "qcow2"
    assert disks["vdb"].find("readonly") is not None
    net = disks["vdc"]
    assert net.get("type") == "network"
    assert net.find("source").get("protocol") == "iscsi"
    assert net.find("source").get("name") == "iqn.2026-01.dev.stackling:v1/1"
    assert net.find("source/host").attrib == {"name": "127.0.0.1", "port": "3260"}
    assert net.find("auth").get("username") == "chap-user"
    assert net.find("auth/secret").attrib == {"type": "iscsi", "usage": "stackling-iscsi-v1"}
    nic = root.find("devices/interface")
    assert nic.get("type") == "bridge"
    assert nic.find("source").get("bridge") == "brq1" and nic.find("target").get("dev") == "tap1"
    assert nic.find("mtu").get("size") == "1450"
    assert root.find("devices/serial/log").get("file") == "/i/s1/console.log"
    server = root.find(f"metadata/{{{dx.METADATA_NS}}}instance/{{{dx.METADATA_NS}}}server")
    assert server.attrib == {"id": "s1", "generation": "3"}
    assert dx.volume_disk(dx.render(_domain()), "v1") is not None
    assert dx.volume_disk(dx.render(_domain()), "v2") is None
    assert dx.secret_usages(dx.render(_domain())) == ["stackling-iscsi-v1"]


def test_hot_plugged_nic_is_the_interface_the_domain_xml_has() -> None:
    """attach_interface sends the same ``<interface>`` a spawn writes; found by its MAC."""
    wire = {"port_id": "ab-cd-1234567890ff", "mac": "FA:16:3e:00:00:02", "bridge": "brq2"}
    nic = NicSpec.from_wire(wire | {"mtu": 1400})
    one = dx.BridgeInterface(nic.mac, nic.bridge, nic.tap(), mtu=nic.mtu)
    plugged = dx.interface_element(one)
    dom = _domain()
    text = dx.render(dx.DomainDef(**{**dom.__dict__, "interfaces": [*dom.interfaces, one]}))
    found = dx.interface_by_mac(text, "fa:16:3e:00:00:02")
    assert found is not None and dx.to_text(found) == dx.to_text(plugged)
    assert plugged.find("target").get("dev") == "tapabcd1234567"
    assert plugged.find("model").get("type") == "virtio"
    assert dx.interface_by_mac(text, "fa:16:3e:00:00:01") is not None
    assert dx.interface_by_mac(text, "fa:16:3e:00:00:03") is None


def test_disk_boot_has_no_kernel() -> None:
    dom = _domain()
    root = ET.fromstring(dx.render(dx.DomainDef(**{**dom.__dict__, "os": dx.OsDef()})))
    assert root.find("os/kernel") is None
    assert root.find("os/boot").get("dev") == "hd"


def test_secret_xml_is_private_iscsi() -> None:
    root = ET.fromstring(dx.secret_xml("stackling-iscsi-v1", "CHAP"))
    assert root.get("private") == "yes" and root.get("ephemeral") == "no"
    assert root.find("usage").get("type") == "iscsi"
    assert root.findtext("usage/target") == "stackling-iscsi-v1"


def test_server_spec_from_wire_checks_and_decodes() -> None:
    spec = ServerSpec.from_wire(
        {
            "server_id": "s1",
            "name": "vm",
            "generation": 2,
            "vcpus": 1,
            "ram_mb": 128,
            "disk_gb": 1,
            "image": {"id": "i1", "disk_format": "qcow2", "path": "/img"},
            "nics": [{"port_id": "ab-cd-1234567890ff", "mac": "m", "bridge": "b", "mtu": 1450}],
            "config_drive": {
                "meta_data": {"uuid": "s1"},
                "network_data": {},
                "user_data": base64.b64encode(b"hi").decode(),
            },
            "volumes": [],
        }
    )
    assert spec.config_drive is not None and spec.config_drive.user_data == b"hi"
    assert spec.nics[0].tap() == "tapabcd1234567"  # the network agent's default name
    with pytest.raises(ValueError):
        ServerSpec.from_wire(
            {
                "server_id": "s1",
                "vcpus": 1,
                "ram_mb": 1,
                "image": {"id": "i", "disk_format": "vmdk", "path": "/x"},
            }
        )
    conn = IscsiConnection.from_wire(
        {"driver_volume_type": "iscsi", "data": {"target_iqn": "iqn.x", "target_portal": "h:3261"}}
    )
    assert conn.host_port() == ("h", 3261) and conn.target_lun == 0


def test_config_drive_is_an_openstack_layout_iso(tmp_path: Path) -> None:
    spec = ConfigDriveSpec({"uuid": "s1", "name": "vm"}, {"links": []}, b"#!/bin/sh\necho hi\n")
    iso = build_config_drive(spec, tmp_path / "disk.config")

    def read(path: str) -> str:
        argv = ["isoinfo", "-R", "-i", str(iso), "-x", path]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    label = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True)
    assert "Volume id: config-2" in label.stdout
    assert '"uuid": "s1"' in read("/openstack/latest/meta_data.json")
    assert read("/openstack/latest/network_data.json") == '{"links": []}'
    assert read("/openstack/latest/user_data") == "#!/bin/sh\necho hi\n"
    listing = subprocess.run(
        ["isoinfo", "-R", "-f", "-i", str(build_config_drive(ConfigDriveSpec(), tmp_path / "b"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "/openstack/latest/meta_data.json" in listing
    assert "/openstack/latest/user_data" not in listing  # no user data, no file
