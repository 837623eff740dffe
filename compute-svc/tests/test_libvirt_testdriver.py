"""LibvirtDriver against libvirt's own test:///default hypervisor: the driver's logic
(idempotent spawn/destroy, power, volumes, listing) without booting anything.

Disks and config drives are really made (qemu-img, genisoimage) in a per-test directory;
every domain carries a random prefix and nothing of it may be left at the end.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from virt_fixtures import fake_image, instances_dir, leftovers, server, sweep, unique_prefix

from compute_svc.drivers.base import IscsiConnection, ServerSpec, VolumeSpec
from compute_svc.drivers.libvirt.disks import virtual_size
from compute_svc.drivers.libvirt.driver import DomainNotFound, LibvirtDriver

URI = "test:///default"


@pytest.fixture(name="driver")
def driver_fixture() -> Iterator[LibvirtDriver]:
    prefix = unique_prefix()
    root = instances_dir(prefix)
    driver = LibvirtDriver(
        uri=URI, virt_type="test", prefix=prefix, instances_dir=root / "inst", shutdown_timeout=0
    )
    try:
        yield driver
    finally:
        driver.close()
        left = leftovers(URI, prefix, root / "inst")
        sweep(URI, prefix, root)
        assert left["domains"] == [], left


def test_spawn_is_idempotent_and_destroy_leaves_nothing(
    driver: LibvirtDriver, tmp_path: Path
) -> None:
    payload = server(fake_image(tmp_path / "img"), user_data=b"echo hi")
    spec = ServerSpec.from_wire(payload)
    first = driver.spawn(spec)
    assert first.power_state == "running" and first.domain == driver.prefix + spec.server_id
    assert driver.spawn(spec) == first  # a repeat changes nothing
    disk = driver.store.disk(spec.server_id)
    assert virtual_size(disk, "qcow2") == 1024**3
    assert driver.store.config_drive(spec.server_id).stat().st_size > 0
    root = ET.fromstring(driver.conn().lookupByName(first.domain).XMLDesc(0))
    assert root.get("type") == "test"
    assert [d.findtext("serial") for d in root.iterfind("devices/disk")] == [None, "config-2"]
    assert [d.server_id for d in driver.list_domains()] == [spec.server_id]
    assert driver.list_disk_owners() == {spec.server_id}

    driver.destroy(spec.server_id)
    driver.destroy(spec.server_id)  # already gone: still fine
    assert driver.list_domains() == []
    assert driver.list_disk_owners() == set()
    assert not driver.store.server_dir(spec.server_id).exists()


@pytest.mark.parametrize("disk_format", ["qcow2", "raw"])
def test_disk_image_gets_an_overlay_on_a_cached_base(
    driver: LibvirtDriver, tmp_path: Path, disk_format: str
) -> None:
    source = tmp_path / f"image.{disk_format}"
    argv = ["qemu-img", "create", "-q", "-f", disk_format, str(source), "64M"]
    subprocess.run(argv, check=True, timeout=60)
    image = {"id": "img-" + disk_format, "disk_format": disk_format, "path": str(source)}
    big = ServerSpec.from_wire(server(image, disk_gb=1))
    small = ServerSpec.from_wire(server(image, disk_gb=0))
    try:
        driver.spawn(big)
        driver.spawn(small)
        base = driver.store.base_dir / ("img-" + disk_format)
        for spec, size in ((big, 1024**3), (small, 64 * 1024**2)):
            info = json.loads(
                subprocess.run(
                    ["qemu-img", "info", "--output=json", str(driver.store.disk(spec.server_id))],
                    capture_output=True, text=True, check=True, timeout=60,
                ).stdout
            )  # fmt: skip
            assert info["format"] == "qcow2" and info["virtual-size"] == size
            assert info["backing-filename"] == str(base)
            assert info["backing-filename-format"] == disk_format
        root = ET.fromstring(
            driver.conn().lookupByName(driver.domain_name(big.server_id)).XMLDesc(0)
        )
        assert root.find("os/kernel") is None and root.find("os/boot").get("dev") == "hd"
    finally:
        driver.destroy(big.server_id)
        driver.destroy(small.server_id)
    assert base.exists()  # the cache outlives its servers


def test_power_actions_and_unknown_server(driver: LibvirtDriver, tmp_path: Path) -> None:
    spec = ServerSpec.from_wire(server(fake_image(tmp_path / "img")))
    driver.spawn(spec)
    try:
        assert driver.power(spec.server_id, "stop").power_state == "shutdown"
        assert driver.power(spec.server_id, "stop").power_state == "shutdown"
        assert driver.power(spec.server_id, "start").power_state == "running"
        assert driver.power(spec.server_id, "reboot").power_state == "running"
        assert driver.console_output(spec.server_id) == ""  # no serial log in the test driver
        with pytest.raises(DomainNotFound):
            driver.power("no-such-server", "start")
        with pytest.raises(DomainNotFound):
            driver.console_output("no-such-server")
    finally:
        driver.destroy(spec.server_id)


def test_volume_attach_is_idempotent_and_detach_removes_it(
    driver: LibvirtDriver, tmp_path: Path
) -> None:
    spec = ServerSpec.from_wire(server(fake_image(tmp_path / "img")))
    driver.spawn(spec)
    volume = VolumeSpec(
        "vol-1", IscsiConnection("iqn.2026-01.dev.stackling:vol-1", "127.0.0.1:3260", 1)
    )
    try:
        # vda root, vdb config drive: the first volume is vdc, and stays vdc when repeated
        assert driver.attach_volume(spec.server_id, volume) == "vdc"
        assert driver.attach_volume(spec.server_id, volume) == "vdc"
        other = VolumeSpec("vol-2", IscsiConnection("iqn.x:vol-2", "127.0.0.1", 2))
        assert driver.attach_volume(spec.server_id, other) == "vdd"
        driver.detach_volume(spec.server_id, "vol-1")
        driver.detach_volume(spec.server_id, "vol-1")  # repeat: nothing to do
        dom = driver.conn().lookupByName(driver.domain_name(spec.server_id))
        persistent = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert "vol-1" not in persistent and "iqn.x:vol-2/2" in persistent
        assert driver.attach_volume(spec.server_id, volume) == "vdc"  # the freed name again
    finally:
        driver.destroy(spec.server_id)
    driver.detach_volume(spec.server_id, "vol-1")  # server gone: still fine


def test_failed_spawn_releases_its_files(driver: LibvirtDriver, tmp_path: Path) -> None:
    image = fake_image(tmp_path / "img") | {"kernel_path": str(tmp_path / "missing")}
    spec = ServerSpec.from_wire(server(image))
    with pytest.raises(Exception, match="not readable"):
        driver.spawn(spec)
    assert driver.list_domains() == []
    assert not driver.store.server_dir(spec.server_id).exists()


def test_capacity_comes_from_the_hypervisor(driver: LibvirtDriver) -> None:
    cap = driver.capacity()
    assert cap.vcpus > 0 and cap.ram_mb > 0 and cap.disk_gb > 0


def test_image_cache_keeps_bases_in_use_and_prunes_the_rest(
    driver: LibvirtDriver, tmp_path: Path
) -> None:
    image = fake_image(tmp_path / "img")
    spec = ServerSpec.from_wire(server(image))
    driver.spawn(spec)
    kernel = driver.store.base_dir / (image["id"] + ".kernel")
    ramdisk = driver.store.base_dir / (image["id"] + ".ramdisk")
    assert driver.prune_image_cache(0) == []  # in use by the server
    driver.destroy(spec.server_id)
    assert driver.prune_image_cache(3600) == []  # unused, but younger than the minimum age
    assert driver.prune_image_cache(0) == sorted([kernel.name, ramdisk.name])
    assert not kernel.exists() and not ramdisk.exists()
