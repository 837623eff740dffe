"""The initiator a compute host logs in with, from its settings to the connector and the
disk XML: pure logic, no hypervisor (the real login is in test_volume_path_iscsi.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from common_rpc.errors import Conflict
from compute_svc.agent.host import ComputeHost
from compute_svc.agent.settings import AgentSettings, default_initiator
from compute_svc.domain.volumes import connector
from compute_svc.drivers.base import HostCapacity, IscsiConnection, VolumeSpec
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.drivers.libvirt.driver import LibvirtDriver


def test_the_initiator_is_a_setting_or_derived_from_the_host_name() -> None:
    assert AgentSettings(host="cn1").initiator_iqn() == "iqn.2010-10.org.stackling:cn1"
    assert default_initiator("Rack_7 CN1") == "iqn.2010-10.org.stackling:rack-7-cn1"
    own = AgentSettings(host="cn1", agent_initiator_iqn="iqn.1993-08.org.debian:01:abc")
    assert own.initiator_iqn() == "iqn.1993-08.org.debian:01:abc"


def test_the_heartbeat_carries_the_initiator_and_the_capacity(tmp_path: Path) -> None:
    driver = LibvirtDriver(
        uri="test:///default",
        virt_type="test",
        prefix="x-",
        instances_dir=tmp_path,
        initiator="iqn.2010-10.org.stackling:cn1",
    )
    host = ComputeHost(driver, "cn1")
    assert host.capabilities() == {"initiator": "iqn.2010-10.org.stackling:cn1"}
    host.capacity = HostCapacity(vcpus=2, ram_mb=512, disk_gb=10)
    assert host.capabilities() == {
        "vcpus": 2,
        "ram_mb": 512,
        "disk_gb": 10,
        "initiator": "iqn.2010-10.org.stackling:cn1",
    }


def test_the_connector_needs_the_reported_initiator() -> None:
    caps = {"vcpus": 2, "initiator": "iqn.2010-10.org.stackling:cn1"}
    assert connector("cn1", caps).model_dump(mode="json") == {
        "host": "cn1",
        "initiator": "iqn.2010-10.org.stackling:cn1",
        "ip": None,
        "multipath": False,
    }
    # Without it the export would admit a name QEMU does not log in with: refused early.
    with pytest.raises(Conflict, match="cn2 has not reported its iSCSI initiator"):
        connector("cn2", {"vcpus": 2})


def test_the_volume_disk_logs_in_as_the_driver_initiator(tmp_path: Path) -> None:
    driver = LibvirtDriver(
        uri="test:///default",
        virt_type="test",
        prefix="x-",
        instances_dir=tmp_path,
        initiator="iqn.2010-10.org.stackling:cn1",
    )
    conn = IscsiConnection("iqn.2010-10.org.stackling:volume-v1", "127.0.0.1:3261", 1)
    disk = driver._volume_disk(VolumeSpec("v1", conn), "vdb")
    el = ET.fromstring(dx.to_text(dx.disk_element(disk)))
    assert el.find("source").get("name") == "iqn.2010-10.org.stackling:volume-v1/1"
    assert el.find("source/host").get("port") == "3261"
    assert el.find("source/initiator/iqn").get("name") == "iqn.2010-10.org.stackling:cn1"
    plain = dx.IscsiDisk("iqn.2010-10.org.stackling:volume-v1", 1, "h", 3260, "vdb", "v1")
    assert dx.disk_element(plain).find("source/initiator") is None
