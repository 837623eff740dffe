"""Typed desired state of one server on a host, and the Protocol compute-agent drives.

Every call is level-triggered and idempotent: the agent may repeat it after a lost reply
or a crash, and a repeat changes nothing.

    spec = ServerSpec.from_wire(server)          # the ``spawn`` payload, checked
    info = driver.spawn(spec)                    # DomainInfo(server_id, domain, "running")
    driver.destroy(spec.server_id)               # also when it is already gone

A driver is a plugin: an entry point ``virt.<name>`` of ``stackling.compute.drivers``
naming a class (or factory) with ``from_config(VirtConfig)`` (see ``drivers.load_virt``);
the built-in ``virt.libvirt`` is registered exactly so.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from common_rpc.chassis import commands

DiskFormat = Literal["qcow2", "raw", "aki-ari"]
PowerAction = Literal["start", "stop", "reboot", "pause", "unpause", "suspend", "resume"]
# The power states of the RPC contract (Nova's names, lower case).
PowerState = Literal["running", "shutdown", "paused", "crashed", "nostate"]


class VirtError(RuntimeError):
    """A host-side failure, with a message fit for the server's fault."""


class DomainNotFound(VirtError):
    pass


class DetachPending(VirtError):
    """The guest was asked to let a device go and still holds it: ask again later."""


class CommandError(commands.CommandError, VirtError):
    """A host command failed (``commands.run(..., error=CommandError)``): a VirtError."""


def _hex(ident: str) -> str:
    return "".join(c for c in ident.lower() if c in "0123456789abcdef")


@dataclass(frozen=True)
class ImageSpec:
    image_id: str
    disk_format: DiskFormat
    path: str
    kernel_path: str | None = None
    ramdisk_path: str | None = None
    cmdline: str | None = None
    # A kernel boot over the image's own root disk (``path``, in this format).
    root_format: DiskFormat | None = None

    @property
    def direct_kernel(self) -> bool:
        return self.disk_format == "aki-ari"


@dataclass(frozen=True)
class NicSpec:
    port_id: str
    mac: str
    bridge: str
    mtu: int = 1500
    # The tap's name: the network agent matches its firewall rules on it.
    device: str = ""

    def tap(self) -> str:
        return self.device or "tap" + _hex(self.port_id)[:11]

    @classmethod
    def from_wire(cls, nic: Mapping[str, Any]) -> NicSpec:
        """One entry of the ``nics`` the compute service sends (spawn, attach, reconcile)."""
        return cls(
            port_id=str(nic["port_id"]),
            mac=str(nic["mac"]),
            bridge=str(nic["bridge"]),
            mtu=int(nic.get("mtu") or 1500),
            device=str(nic.get("device") or ""),
        )


@dataclass(frozen=True)
class IscsiConnection:
    """Where a volume is exported: Cinder's ``iscsi`` connection ``data``."""

    target_iqn: str
    target_portal: str
    target_lun: int = 0
    auth_username: str | None = None
    auth_password: str | None = None

    @classmethod
    def from_wire(cls, connection: Mapping[str, Any]) -> IscsiConnection:
        data = connection.get("data", connection)
        return cls(
            target_iqn=str(data["target_iqn"]),
            target_portal=str(data["target_portal"]),
            target_lun=int(data.get("target_lun", 0)),
            auth_username=data.get("auth_username"),
            auth_password=data.get("auth_password"),
        )

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.target_portal.rpartition(":")
        if not host:
            return self.target_portal, 3260
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class VolumeSpec:
    volume_id: str
    connection: IscsiConnection
    device: str | None = None


@dataclass(frozen=True)
class ConfigDriveSpec:
    meta_data: dict[str, Any] = field(default_factory=dict)
    network_data: dict[str, Any] = field(default_factory=dict)
    user_data: bytes | None = None


@dataclass(frozen=True)
class ServerSpec:
    server_id: str
    name: str
    generation: int
    vcpus: int
    ram_mb: int
    disk_gb: int
    image: ImageSpec
    nics: tuple[NicSpec, ...] = ()
    config_drive: ConfigDriveSpec | None = None
    volumes: tuple[VolumeSpec, ...] = ()

    @classmethod
    def from_wire(cls, server: Mapping[str, Any]) -> ServerSpec:
        """The ``spawn`` payload; a missing or malformed key raises KeyError/ValueError."""
        image = server["image"]
        if image["disk_format"] not in ("qcow2", "raw", "aki-ari"):
            raise ValueError(f"unsupported disk_format {image['disk_format']!r}")
        drive = server.get("config_drive")
        user_data = drive.get("user_data") if drive else None
        return cls(
            server_id=str(server["server_id"]),
            name=str(server.get("name") or server["server_id"]),
            generation=int(server.get("generation", 0)),
            vcpus=int(server["vcpus"]),
            ram_mb=int(server["ram_mb"]),
            disk_gb=int(server.get("disk_gb") or 0),
            image=ImageSpec(
                image_id=str(image["id"]),
                disk_format=image["disk_format"],
                path=str(image["path"]),
                kernel_path=image.get("kernel_path"),
                ramdisk_path=image.get("ramdisk_path"),
                cmdline=image.get("cmdline"),
                root_format=image.get("root_format"),
            ),
            nics=tuple(NicSpec.from_wire(n) for n in server.get("nics") or ()),
            config_drive=None
            if drive is None
            else ConfigDriveSpec(
                meta_data=dict(drive.get("meta_data") or {}),
                network_data=dict(drive.get("network_data") or {}),
                user_data=base64.b64decode(user_data, validate=True) if user_data else None,
            ),
            volumes=tuple(
                VolumeSpec(
                    volume_id=str(v["volume_id"]),
                    connection=IscsiConnection.from_wire(v["connection"]),
                    device=v.get("device"),
                )
                for v in server.get("volumes") or ()
            ),
        )


@dataclass(frozen=True)
class DomainInfo:
    server_id: str
    domain: str
    power_state: PowerState


@dataclass(frozen=True)
class HostCapacity:
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class VirtConfig:
    """What a virt driver is built from: the agent's settings."""

    # Where the hypervisor is (qemu:///system; test:///default for fast tests).
    uri: str
    # The domain type: "qemu" (TCG), "kvm", "test".
    virt_type: str
    # Every domain (and secret) whose name starts with it is this driver's.
    prefix: str
    # Base images, per-server disks, config drives, console logs.
    instances_dir: Path
    # Seconds an ACPI shutdown may take before "stop" pulls the plug.
    shutdown_timeout: float = 10.0
    # Seconds one unplug request waits for the guest, when the caller names none.
    detach_timeout: float = 20.0
    # What the scheduler may place here; None: what the hypervisor and the disk report.
    capacity: HostCapacity | None = None
    # The iSCSI initiator volume disks log in as (None: the hypervisor's default).
    initiator: str | None = None


class VirtDriver(Protocol):
    """One hypervisor on this host. Calls block: the agent runs them in a thread."""

    # The iSCSI initiator its guests' volume disks log in as (the heartbeat reports it).
    initiator: str | None
    # Seconds one unplug request waits for the guest, when the caller names none.
    detach_timeout: float

    def domain_name(self, server_id: str) -> str: ...

    def spawn(self, spec: ServerSpec) -> DomainInfo:
        """Disks, config drive and a running domain; an existing domain is left as it is."""
        ...

    def destroy(self, server_id: str) -> None:
        """Domain, disks, config drive and secrets gone; fine when nothing is there."""
        ...

    def power(self, server_id: str, action: PowerAction) -> DomainInfo: ...

    def rebuild(self, spec: ServerSpec) -> DomainInfo:
        """Domain and disk made again from ``spec`` (its image may be another)."""
        ...

    def resize(self, spec: ServerSpec, running: bool) -> DomainInfo:
        """Stop, keep a copy of the files and definition, grow the disk, define at the
        new size (started if ``running``); a repeat keeps the first copy."""
        ...

    def finish_resize(self, server_id: str, revert: bool, running: bool) -> DomainInfo:
        """Confirm (drop the copy) or revert (back to it); started if ``running``."""
        ...

    def snapshot(self, server_id: str, target: Path) -> DomainInfo:
        """The root disk as one standalone qcow2 at ``target`` (a running guest paused
        for the copy, then running again); its power state as before."""
        ...

    def console_output(self, server_id: str, length: int | None = None) -> str:
        """The serial console log; with ``length``, only its last ``length`` lines."""
        ...

    def attach_volume(self, server_id: str, volume: VolumeSpec) -> str:
        """Hot-plug the volume; returns its device name (the same one when repeated)."""
        ...

    def detach_volume(self, server_id: str, volume_id: str, timeout: float | None = None) -> None:
        """Ask the guest once to let the disk go and wait ``timeout`` seconds; DetachPending
        while it still holds it."""
        ...

    def keep_volume(self, server_id: str, volume_id: str) -> None:
        """A detach that failed for good: the disk back in the definition."""
        ...

    def attach_interface(self, server_id: str, nic: NicSpec) -> bool:
        """Hot-plug the NIC (and keep it in the persistent definition); False when it was
        already there, so a repeat or a reconcile round changes nothing."""
        ...

    def detach_interface(self, server_id: str, nic: NicSpec, timeout: float | None = None) -> None:
        """Unplug the NIC (found by its MAC) and drop it from the definition; fine when
        it or the domain is already gone; DetachPending while the guest holds it."""
        ...

    def keep_interface(self, server_id: str, nic: NicSpec) -> None: ...

    def list_domains(self) -> list[DomainInfo]:
        """Every domain with this driver's prefix."""
        ...

    def list_disk_owners(self) -> set[str]:
        """Server ids that have files in the instances directory."""
        ...

    def prune_image_cache(self, min_age_s: float) -> list[str]:
        """Drop cached images no server uses that are older than ``min_age_s``."""
        ...

    def capacity(self) -> HostCapacity: ...

    def close(self) -> None: ...


class VirtDriverFactory(Protocol):
    """What an entry point of kind ``virt`` names: a driver class, or a factory."""

    def from_config(self, config: VirtConfig) -> VirtDriver: ...
