"""LibvirtDriver: servers as persistent libvirt domains named ``<prefix><server_id>``.

Each server owns ``<instances>/<server_id>/`` (``disk``, ``disk.config``, ``console.log``)
and, per attached volume with CHAP, a libvirt secret of usage ``<prefix>iscsi-<volume>``.
Everything with the prefix is this driver's: ``list_domains`` and ``list_disk_owners``
show it to the reconcile loop. Calls block; the agent runs them in threads.

    driver = LibvirtDriver(uri="qemu:///system", virt_type="qemu", prefix="stackling-",
                           instances_dir=Path("/var/lib/stackling/instances"))
    driver.spawn(ServerSpec.from_wire(server))
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import libvirt

from compute_svc.drivers.base import (
    DetachPending,
    DomainInfo,
    DomainNotFound,
    HostCapacity,
    NicSpec,
    PowerAction,
    PowerState,
    ServerSpec,
    VirtConfig,
    VirtError,
    VolumeSpec,
)
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.drivers.libvirt.config_drive import ConfigDriveError, build_config_drive
from compute_svc.drivers.libvirt.disks import GIB, DiskError, InstanceStore

# The driver's errors are every virt driver's (drivers.base); callers import them here too.
__all__ = ["DetachPending", "DomainNotFound", "LibvirtDriver", "VirtError"]

DEFAULT_CMDLINE = "console=ttyS0"
_UUID_NS = uuid.UUID("6c1e0bd4-5d1a-4a53-9a36-2f0c7f2b9f41")
_STATES: dict[int, PowerState] = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "running",  # still shutting down
    libvirt.VIR_DOMAIN_SHUTOFF: "shutdown",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "paused",
}


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; we raise them instead."""


libvirt.registerErrorHandler(_quiet, None)


def _missing(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_SECRET)


def _no_hotplug(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT


def _already_gone(exc: libvirt.libvirtError) -> bool:
    """The device (or the whole domain) went between our look and the unplug request."""
    code, message = exc.get_error_code(), exc.get_error_message() or ""
    return code in (libvirt.VIR_ERR_DEVICE_MISSING, libvirt.VIR_ERR_NO_DOMAIN) or (
        code == libvirt.VIR_ERR_OPERATION_FAILED and "not found" in message
    )


def _unplug_pending(exc: libvirt.libvirtError) -> bool:
    """QEMU refuses a second unplug request while the guest has not answered the first
    (Nova ignores it the same way): the first one still stands."""
    message = exc.get_error_message() or ""
    return exc.get_error_code() == libvirt.VIR_ERR_INTERNAL_ERROR and (
        "already in the process of unplug" in message
    )


def _drop_volume(devices: ET.Element, volume_id: str) -> None:
    for disk in list(devices.iterfind("disk")):
        alias = disk.find("alias")
        if alias is not None and alias.get("name") == "ua-" + volume_id:
            devices.remove(disk)


def _drop_interface(devices: ET.Element, mac: str) -> None:
    for nic in list(devices.iterfind("interface")):
        found = nic.find("mac")
        if found is not None and found.get("address", "").lower() == mac.lower():
            devices.remove(nic)


def _bridge_interface(nic: NicSpec) -> dx.BridgeInterface:
    """The typed ``<interface>`` of a port: the same at spawn and at hot-plug."""
    return dx.BridgeInterface(mac=nic.mac, bridge=nic.bridge, tap=nic.tap(), mtu=nic.mtu)


def _no_secrets(exc: libvirt.libvirtError) -> bool:
    """test:///default keeps no secrets: there is then none to remove."""
    return exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT


class LibvirtDriver:
    def __init__(
        self,
        *,
        uri: str,
        virt_type: str,
        prefix: str,
        instances_dir: Path,
        shutdown_timeout: float = 10.0,
        detach_timeout: float = 20.0,
        capacity: HostCapacity | None = None,
        initiator: str | None = None,
    ) -> None:
        self.uri = uri
        # The iSCSI initiator every volume disk logs in as (None: QEMU's default name).
        self.initiator = initiator
        self.virt_type = virt_type
        self.prefix = prefix
        self.store = InstanceStore(instances_dir)
        self.shutdown_timeout = shutdown_timeout
        self.detach_timeout = detach_timeout
        self._capacity = capacity
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: VirtConfig) -> LibvirtDriver:
        """The entry point ``virt.libvirt`` of ``stackling.compute.drivers``."""
        return cls(
            uri=config.uri,
            virt_type=config.virt_type,
            prefix=config.prefix,
            instances_dir=config.instances_dir,
            shutdown_timeout=config.shutdown_timeout,
            detach_timeout=config.detach_timeout,
            capacity=config.capacity,
            initiator=config.initiator,
        )

    # -- connection and lookups

    def conn(self) -> libvirt.virConnect:
        with self._conn_lock:
            if self._conn is None or not self._conn.isAlive():
                self._conn = libvirt.open(self.uri)
            return self._conn

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None

    def domain_name(self, server_id: str) -> str:
        return self.prefix + server_id

    def _lookup(self, server_id: str) -> libvirt.virDomain | None:
        try:
            return self.conn().lookupByName(self.domain_name(server_id))
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return None
            raise

    def _require(self, server_id: str) -> libvirt.virDomain:
        dom = self._lookup(server_id)
        if dom is None:
            raise DomainNotFound(f"no domain for server {server_id} on this host")
        return dom

    def _info(self, server_id: str, dom: libvirt.virDomain) -> DomainInfo:
        state, _reason = dom.state()
        return DomainInfo(server_id, dom.name(), _STATES.get(state, "nostate"))

    # -- spawn / destroy

    def spawn(self, spec: ServerSpec) -> DomainInfo:
        dom = self._lookup(spec.server_id)
        if dom is not None:
            return self._info(spec.server_id, dom)
        try:
            definition = self._prepare(spec)
            dom = self.conn().defineXML(dx.render(definition))
            dom.create()
        except (libvirt.libvirtError, DiskError, ConfigDriveError, OSError) as exc:
            self.destroy(spec.server_id)  # release what this attempt took
            for volume in spec.volumes:
                self._remove_secret(self._secret_usage(volume.volume_id))
            raise VirtError(f"spawn of server {spec.server_id} failed: {exc}") from exc
        return self._info(spec.server_id, dom)

    def _prepare(self, spec: ServerSpec) -> dx.DomainDef:
        """Files and secrets of the server, and the domain that uses them."""
        store, image = self.store, spec.image
        store.make_server_dir(spec.server_id)
        bases: list[Path] = []
        disks: list[dx.FileDisk | dx.IscsiDisk] = []
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        os_def: dx.OsDef
        if image.direct_kernel:
            kernel = store.cached(image.image_id, image.kernel_path or image.path, ".kernel")
            initrd = (
                store.cached(image.image_id, image.ramdisk_path, ".ramdisk")
                if image.ramdisk_path
                else None
            )
            bases += [kernel, initrd] if initrd else [kernel]
            os_def = dx.OsDef(
                kernel=str(kernel),
                initrd=str(initrd) if initrd else None,
                cmdline=image.cmdline or DEFAULT_CMDLINE,
            )
            if image.root_format is not None:  # a snapshot's disk under the kernel
                base = store.cached(image.image_id, image.path)
                bases.append(base)
                disk = store.disk(spec.server_id)
                store.create_overlay(disk, base, image.root_format, spec.disk_gb)
                disks.append(dx.FileDisk(str(disk), "qcow2", "vd" + next(letters)))
            elif spec.disk_gb > 0:
                store.create_blank(store.disk(spec.server_id), spec.disk_gb)
                disks.append(
                    dx.FileDisk(str(store.disk(spec.server_id)), "qcow2", "vd" + next(letters))
                )
        else:
            base = store.cached(image.image_id, image.path)
            bases.append(base)
            store.create_overlay(store.disk(spec.server_id), base, image.disk_format, spec.disk_gb)
            disks.append(
                dx.FileDisk(str(store.disk(spec.server_id)), "qcow2", "vd" + next(letters))
            )
            os_def = dx.OsDef()
        store.record_bases(spec.server_id, bases)
        if spec.config_drive is not None:
            path = build_config_drive(spec.config_drive, store.config_drive(spec.server_id))
            disks.append(
                dx.FileDisk(
                    str(path), "raw", "vd" + next(letters), readonly=True, serial="config-2"
                )
            )
        for volume in spec.volumes:
            disks.append(self._volume_disk(volume, "vd" + next(letters)))
        return dx.DomainDef(
            name=self.domain_name(spec.server_id),
            uuid=str(uuid.uuid5(_UUID_NS, self.domain_name(spec.server_id))),
            vcpus=spec.vcpus,
            memory_mib=spec.ram_mb,
            os=os_def,
            virt_type=self.virt_type,
            disks=disks,
            interfaces=[_bridge_interface(n) for n in spec.nics],
            console_log=str(store.console_log(spec.server_id)),
            server_id=spec.server_id,
            generation=spec.generation,
        )

    def destroy(self, server_id: str) -> None:
        dom = self._lookup(server_id)
        usages: set[str] = set()
        if dom is not None:
            try:
                usages.update(dx.secret_usages(dom.XMLDesc(0)))
                usages.update(dx.secret_usages(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
                if dom.isActive():
                    dom.destroy()
                self._undefine(dom)
            except libvirt.libvirtError as exc:
                if not _missing(exc):
                    raise VirtError(f"destroy of server {server_id} failed: {exc}") from exc
        for usage in usages:
            self._remove_secret(usage)
        self.store.remove(server_id)

    def rebuild(self, spec: ServerSpec) -> DomainInfo:
        """The server made again: its domain and files go (its volumes' secrets are made
        again by the spawn), then a spawn from ``spec``'s image."""
        self.destroy(spec.server_id)
        return self.spawn(spec)

    def resize(self, spec: ServerSpec, running: bool) -> DomainInfo:
        """Resize on this host: stop the guest, keep its files and definition aside (a
        repeat keeps the first copy), grow its disk and define it at ``spec``'s size."""
        dom = self._require(spec.server_id)
        kept = self.store.resize_copy(spec.server_id)
        try:
            if dom.isActive():
                self._stop(dom)
            if not kept.exists():
                kept.parent.mkdir(parents=True, exist_ok=True)
                partial = kept.with_name(kept.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(self.store.server_dir(spec.server_id), partial)
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                (partial / "domain.xml").write_text(xml)
                partial.replace(kept)
            definition = self._prepare(spec)
            self.store.grow(self.store.disk(spec.server_id), spec.disk_gb)
            dom = self.conn().defineXML(dx.render(definition))
            if running and not dom.isActive():
                dom.create()
        except (libvirt.libvirtError, DiskError, ConfigDriveError, OSError) as exc:
            raise VirtError(f"resize of server {spec.server_id} failed: {exc}") from exc
        return self._info(spec.server_id, dom)

    def finish_resize(self, server_id: str, revert: bool, running: bool) -> DomainInfo:
        """Confirm: the kept copy goes. Revert: the guest stopped, its kept files and
        definition back in place. Either way started if ``running``."""
        dom = self._require(server_id)
        kept = self.store.resize_copy(server_id)
        try:
            if revert and kept.exists():
                if dom.isActive():
                    self._stop(dom)
                dom = self.conn().defineXML((kept / "domain.xml").read_text())
                current = self.store.server_dir(server_id)
                trash = kept.with_name(kept.name + ".old")
                shutil.rmtree(trash, ignore_errors=True)
                if current.exists():
                    current.replace(trash)
                kept.replace(current)
                (current / "domain.xml").unlink(missing_ok=True)
                shutil.rmtree(trash, ignore_errors=True)
            self.store.drop_resize_copy(server_id)
            if running and not dom.isActive():
                dom.create()
        except (libvirt.libvirtError, OSError) as exc:
            raise VirtError(f"finishing the resize of server {server_id} failed: {exc}") from exc
        return self._info(server_id, dom)

    def snapshot(self, server_id: str, target: Path) -> DomainInfo:
        """The root disk (overlay and base) copied to a standalone qcow2 at ``target``.

        A running guest is paused for the copy: QEMU drains and flushes its disk I/O when
        the vCPUs stop, so the file qemu-img reads is consistent and nothing writes it
        meanwhile (a crash-consistent copy, as Nova's cold snapshot); it runs again
        after, even if the copy failed. Simpler than a blockcopy, which wants a transient
        domain or a newer libvirt, and it needs nothing but the files. A paused, shut off
        or suspended (managed save) guest is copied as it is."""
        dom = self._require(server_id)
        try:
            state = dom.state()[0]
            running = state == libvirt.VIR_DOMAIN_RUNNING
            if running:
                dom.suspend()
            try:
                self.store.snapshot(server_id, target, shared=bool(dom.isActive()))
            finally:
                if running:
                    dom.resume()
        except (libvirt.libvirtError, DiskError, OSError) as exc:
            raise VirtError(f"snapshot of server {server_id} failed: {exc}") from exc
        return self._info(server_id, dom)

    def _undefine(self, dom: libvirt.virDomain) -> None:
        # No NVRAM flag: the domains boot by BIOS, and the test driver rejects it.
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        )
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if not _missing(exc):
                raise

    # -- power and console

    def power(self, server_id: str, action: PowerAction) -> DomainInfo:
        dom = self._require(server_id)
        try:
            if action == "start":
                if not dom.isActive():
                    dom.create()
            elif action == "stop":
                if dom.isActive():
                    self._stop(dom)
            elif action == "reboot":
                if dom.isActive():
                    dom.reset(0)  # a hard reset: a guest without ACPI handling reboots too
                else:
                    dom.create()
            elif action == "pause":
                if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
                    dom.suspend()  # libvirt's suspend: the vCPUs stop, memory stays
            elif action == "unpause":
                if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
                    dom.resume()
            elif action == "suspend":
                if dom.isActive():
                    dom.managedSave(0)  # memory to disk, the domain shut off
            elif action == "resume":
                if not dom.isActive():
                    dom.create()  # restores the managed save image
            else:
                raise VirtError(f"unknown power action {action!r}")
        except libvirt.libvirtError as exc:
            raise VirtError(f"{action} of server {server_id} failed: {exc}") from exc
        return self._info(server_id, dom)

    def _stop(self, dom: libvirt.virDomain) -> None:
        """ACPI shutdown, then a hard stop when the guest has not gone within the timeout."""
        if self.shutdown_timeout > 0:
            try:
                dom.shutdown()
            except libvirt.libvirtError:
                pass
            deadline = time.monotonic() + self.shutdown_timeout
            while time.monotonic() < deadline:
                if not dom.isActive():
                    return
                time.sleep(0.2)
        try:
            dom.destroy()
        except libvirt.libvirtError:
            if dom.isActive():
                raise

    def console_output(self, server_id: str, length: int | None = None) -> str:
        path = self.store.console_log(server_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self._require(server_id)
            return ""
        text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
        if length is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-length:]) if length > 0 else ""
        return text

    # -- volumes

    def _secret_usage(self, volume_id: str) -> str:
        return f"{self.prefix}iscsi-{volume_id}"

    def _volume_disk(self, volume: VolumeSpec, target: str) -> dx.IscsiDisk:
        conn = volume.connection
        usage = None
        if conn.auth_username and conn.auth_password is not None:
            usage = self._secret_usage(volume.volume_id)
            self._ensure_secret(usage, conn.auth_password)
        host, port = conn.host_port()
        return dx.IscsiDisk(
            iqn=conn.target_iqn,
            lun=conn.target_lun,
            host=host,
            port=port,
            target=target,
            volume_id=volume.volume_id,
            auth_username=conn.auth_username if usage else None,
            secret_usage=usage,
            initiator=self.initiator,
        )

    def _ensure_secret(self, usage: str, password: str) -> None:
        try:
            secret = self.conn().secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
        except libvirt.libvirtError as exc:
            if not _missing(exc):
                raise
            secret = self.conn().secretDefineXML(dx.secret_xml(usage, "CHAP of " + usage))
        secret.setValue(password.encode())

    def _remove_secret(self, usage: str) -> None:
        try:
            self.conn().secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage).undefine()
        except libvirt.libvirtError as exc:
            if not (_missing(exc) or _no_secrets(exc)):
                raise

    def _xmls(self, dom: libvirt.virDomain) -> list[str]:
        out = [dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)]
        if dom.isActive():
            out.append(dom.XMLDesc(0))
        return out

    def attach_volume(self, server_id: str, volume: VolumeSpec) -> str:
        dom = self._require(server_id)
        try:
            xmls = self._xmls(dom)
            for text in xmls:
                present = dx.volume_disk(text, volume.volume_id)
                if present is not None:
                    return present.find("target").get("dev", "")  # type: ignore[union-attr]
            used = set().union(*(dx.disk_targets(text) for text in xmls))
            free = next(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"vd{c}" not in used)
            disk = self._volume_disk(volume, free)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            try:
                dom.attachDeviceFlags(dx.to_text(dx.disk_element(disk)), flags)
            except libvirt.libvirtError as exc:
                if not _no_hotplug(exc):
                    raise
                self._redefine(dom, lambda devices: devices.append(dx.disk_element(disk)))
        except libvirt.libvirtError as exc:
            # Not plugged (a refused login, say): its CHAP secret goes too.
            self._remove_secret(self._secret_usage(volume.volume_id))
            raise VirtError(f"attach of volume {volume.volume_id} failed: {exc}") from exc
        return free

    def detach_volume(self, server_id: str, volume_id: str, timeout: float | None = None) -> None:
        """One unplug request for the volume's disk (see ``_detach_device``); its CHAP
        secret goes once the guest let the disk go. ``DetachPending``: ask again."""
        dom = self._lookup(server_id)
        if dom is not None:
            try:
                self._detach_device(
                    dom,
                    lambda xml: dx.volume_disk(xml, volume_id),
                    lambda devices: _drop_volume(devices, volume_id),
                    f"volume {volume_id}",
                    self.detach_timeout if timeout is None else timeout,
                )
            except libvirt.libvirtError as exc:
                if not _already_gone(exc):
                    raise VirtError(f"detach of volume {volume_id} failed: {exc}") from exc
        self._remove_secret(self._secret_usage(volume_id))

    def keep_volume(self, server_id: str, volume_id: str) -> None:
        """After a detach that failed for good: the disk the guest still has goes back into
        the persistent definition, so a restart keeps the volume that stays attached."""
        self._keep_device(
            server_id, lambda xml: dx.volume_disk(xml, volume_id), f"volume {volume_id}"
        )

    def _detach_device(
        self,
        dom: libvirt.virDomain,
        find: Callable[[str], ET.Element | None],
        drop: Callable[[ET.Element], None],
        what: str,
        timeout: float,
    ) -> None:
        """One detach attempt: take the device out of the persistent definition, ask the
        running guest to let it go, and wait up to ``timeout`` seconds until it did.

        Raises ``DetachPending`` when the guest still holds it (one still booting ignores
        the request): the caller asks again, as Nova's ``device_detach_attempts`` do.
        ``find`` picks the device from a domain's XML, ``drop`` removes it from the
        definition where the driver cannot unplug.
        """
        inactive = find(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if inactive is not None:
            try:
                dom.detachDeviceFlags(dx.to_text(inactive), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            except libvirt.libvirtError as exc:
                if _no_hotplug(exc):
                    self._redefine(dom, drop)
                elif not _already_gone(exc):
                    raise
        if not dom.isActive():
            return
        live = find(dom.XMLDesc(0))
        if live is None:
            return
        try:
            # libvirt itself waits a few seconds for the guest before it answers.
            dom.detachDeviceFlags(dx.to_text(live), libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError as exc:
            if _no_hotplug(exc) or _already_gone(exc):
                return  # gone, or gone from the definition: absent at the next start
            if not _unplug_pending(exc):
                raise
        # The guest releases a hot-plugged device asynchronously: wait until it is gone.
        deadline = time.monotonic() + timeout
        while find(dom.XMLDesc(0)) is not None:
            if time.monotonic() > deadline:
                raise DetachPending(f"the guest has not released {what} yet")
            time.sleep(0.2)

    def _keep_device(
        self, server_id: str, find: Callable[[str], ET.Element | None], what: str
    ) -> None:
        dom = self._lookup(server_id)
        if dom is None or not dom.isActive():
            return
        try:
            live = find(dom.XMLDesc(0))
            if live is None or find(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) is not None:
                return
            try:
                dom.attachDeviceFlags(dx.to_text(live), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            except libvirt.libvirtError as exc:
                if not _no_hotplug(exc):
                    raise
                self._redefine(dom, lambda devices: devices.append(live))
        except libvirt.libvirtError as exc:
            if not _missing(exc):
                raise VirtError(f"keeping {what} in the definition failed: {exc}") from exc

    # -- network interfaces

    def attach_interface(self, server_id: str, nic: NicSpec) -> bool:
        dom = self._require(server_id)
        element = dx.interface_element(_bridge_interface(nic))
        try:
            flags = 0
            if dx.interface_by_mac(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), nic.mac) is None:
                flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive() and dx.interface_by_mac(dom.XMLDesc(0), nic.mac) is None:
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            if not flags:
                return False
            try:
                # Live and persistent at once: a refused hot-plug leaves neither changed.
                dom.attachDeviceFlags(dx.to_text(element), flags)
            except libvirt.libvirtError as exc:
                if not _no_hotplug(exc):
                    raise
                if not flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG:
                    return False  # no live hot-plug here: plugged at the next start
                self._redefine(dom, lambda devices: devices.append(element))
        except libvirt.libvirtError as exc:
            raise VirtError(f"attach of port {nic.port_id} failed: {exc}") from exc
        return True

    def detach_interface(self, server_id: str, nic: NicSpec, timeout: float | None = None) -> None:
        """One unplug request for the port's NIC (see ``_detach_device``); fine when it is
        already gone. ``DetachPending``: the guest still has it, ask again."""
        dom = self._lookup(server_id)
        if dom is None:
            return
        try:
            self._detach_device(
                dom,
                lambda xml: dx.interface_by_mac(xml, nic.mac),
                lambda devices: _drop_interface(devices, nic.mac),
                f"the NIC {nic.mac}",
                self.detach_timeout if timeout is None else timeout,
            )
        except libvirt.libvirtError as exc:
            if _missing(exc) or _already_gone(exc):
                return
            raise VirtError(f"detach of port {nic.port_id} failed: {exc}") from exc

    def keep_interface(self, server_id: str, nic: NicSpec) -> None:
        """After a detach that failed for good: the NIC goes back into the definition."""
        self._keep_device(
            server_id, lambda xml: dx.interface_by_mac(xml, nic.mac), f"the NIC {nic.mac}"
        )

    def _redefine(self, dom: libvirt.virDomain, change: Callable[[ET.Element], None]) -> None:
        """Edit the persistent definition: hot-plug's stand-in where the driver has none."""
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        devices = root.find("devices")
        if devices is None:
            devices = ET.SubElement(root, "devices")
        change(devices)
        self.conn().defineXML(dx.to_text(root))

    # -- host view

    def list_domains(self) -> list[DomainInfo]:
        """Our domains and their power states; one undefined while being listed (a
        delete or an offload running meanwhile) is left out, not an error."""
        out = []
        for dom in self.conn().listAllDomains(0):
            name = dom.name()
            if not name.startswith(self.prefix):
                continue
            try:
                out.append(self._info(name[len(self.prefix) :], dom))
            except libvirt.libvirtError as exc:
                if not _missing(exc):
                    raise
        return sorted(out, key=lambda d: d.server_id)

    def list_disk_owners(self) -> set[str]:
        return self.store.owners()

    def prune_image_cache(self, min_age_s: float) -> list[str]:
        return self.store.prune_bases(min_age_s)

    def capacity(self) -> HostCapacity:
        if self._capacity is not None:
            return self._capacity
        info = self.conn().getInfo()
        self.store.ensure_dirs()
        disk = shutil.disk_usage(self.store.root).total // GIB
        return HostCapacity(vcpus=int(info[2]), ram_mb=int(info[1]), disk_gb=int(disk))
