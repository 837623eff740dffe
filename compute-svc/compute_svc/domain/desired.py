"""What a compute-agent is told to hold: one server (``spawn``), or its whole host
(``host_state``, its reconcile), as the typed models of ``contracts``.

    state = await server_state(session, deps.images, server)   # contracts.ServerState
    state.image.disk_format, state.nics[0].bridge, state.config_drive.meta_data
    host = await host_state(deps, "cn1")                        # contracts.HostState
"""

from __future__ import annotations

import re
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..contracts import (
    AttachedVolume,
    ConfigDrive,
    DesiredServer,
    HostState,
    ImageRef,
    Nic,
    ServerState,
    VolumeConnection,
)
from ..db.models import Image, Migration, Server, VolumeAttachment
from ..wiring import Deps
from .common import transaction
from .errors import invalid
from .image_store import ImageStore


def hostname(name: str) -> str:
    """A DNS label from the server's name (never used on the host, only in the guest)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "server"


async def _active_image(session: AsyncSession, image_id: str, project_id: str) -> Image:
    image = await session.get(Image, image_id)
    if image is None or image.status != "active":
        raise invalid(f"Image {image_id} is not available.")
    if image.visibility != "public" and image.owner != project_id:
        raise invalid(f"Image {image_id} is not available.")
    return image


async def image_spec(session: AsyncSession, store: ImageStore, server: Server) -> ImageRef:
    """How the agent boots: a disk image, or a kernel (and ramdisk) named by properties.
    A shelved server boots from its shelved image (``domain.shelving``), not its own."""
    image = await _active_image(
        session, server.shelved_image_id or server.image_id, server.project_id
    )
    props = image.properties or {}
    path = str(store.path(image.id))
    kernel_id = props.get("kernel_id") or (image.id if image.disk_format == "aki" else None)
    if kernel_id:
        kernel = await _active_image(session, kernel_id, server.project_id)
        kernel_path = str(store.path(kernel.id))
        ramdisk_path = None
        if props.get("ramdisk_id"):
            ramdisk = await _active_image(session, props["ramdisk_id"], server.project_id)
            ramdisk_path = str(store.path(ramdisk.id))
        return ImageRef(
            id=image.id,
            disk_format="aki-ari",
            # A machine image without data of its own boots from its kernel alone.
            path=path if image.size else kernel_path,
            kernel_path=kernel_path,
            ramdisk_path=ramdisk_path,
            cmdline=props.get("os_command_line") or None,
            # A snapshot of a kernel-booted server: its disk comes back under the kernel.
            root_format=image.disk_format
            if image.size and image.disk_format in ("qcow2", "raw")
            else None,
        )
    if image.disk_format not in ("qcow2", "raw"):
        raise invalid(f"Image {image.id} ({image.disk_format}) cannot be booted.")
    return ImageRef(id=image.id, disk_format=image.disk_format, path=path)


def nic_wire(nic: dict[str, Any]) -> Nic:
    """A bound NIC as its agent gets it (spawn, attach_interface, the reconcile's list)."""
    return Nic(port_id=nic["port_id"], mac=nic["mac"], bridge=nic["bridge"], mtu=nic["mtu"])


def attached_nics(server: Server) -> list[dict[str, Any]]:
    """The NICs the guest has: bound by its boot or hot-plugged by an attach."""
    return [n for n in server.nics or [] if n.get("bound")]


def network_data(nics: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenStack's network_data.json: one link per NIC, DHCP on each."""
    links, networks = [], []
    for index, nic in enumerate(nics):
        link_id = f"tap{nic['port_id'][:11]}"
        links.append(
            {
                "id": link_id,
                "type": "bridge",
                "ethernet_mac_address": nic["mac"],
                "mtu": nic.get("mtu"),
                "vif_id": nic["port_id"],
            }
        )
        networks.append(
            {
                "id": f"network{index}",
                "type": "ipv4_dhcp",
                "link": link_id,
                "network_id": nic["network_id"],
            }
        )
    return {"links": links, "networks": networks, "services": []}


def meta_data(server: Server) -> dict[str, Any]:
    keys = {server.key_name: server.public_key} if server.key_name and server.public_key else {}
    return {
        "uuid": server.id,
        "name": server.name,
        "hostname": hostname(server.name),
        "launch_index": 0,
        "availability_zone": (server.availability_zone or "nova").partition(":")[0],
        "project_id": server.project_id,
        "public_keys": keys,
        "keys": [{"name": k, "type": "ssh", "data": v} for k, v in keys.items()],
        "meta": dict(server.meta or {}),
    }


async def server_state(session: AsyncSession, store: ImageStore, server: Server) -> ServerState:
    """The whole server for its host's ``spawn``."""
    nics = attached_nics(server)
    attached = await session.scalars(
        select(VolumeAttachment).where(
            VolumeAttachment.server_id == server.id, VolumeAttachment.status == "attached"
        )
    )
    return ServerState(
        server_id=server.id,
        name=server.name,
        generation=server.generation,
        vcpus=server.vcpus,
        ram_mb=server.ram_mb,
        disk_gb=server.disk_gb,
        image=await image_spec(session, store, server),
        nics=[nic_wire(n) for n in nics],
        config_drive=ConfigDrive(
            meta_data=meta_data(server),
            network_data=network_data(nics),
            user_data=server.user_data,
        ),
        volumes=[
            AttachedVolume(
                volume_id=a.volume_id,
                device=a.device,
                # As initialize_connection answered it (with the connector kept beside).
                connection=VolumeConnection.model_validate(a.connection),
            )
            for a in attached
        ],
    )


# The states in which a server's guest belongs on its host.
# A SHELVED one too (stopped, until offloaded); a SHELVED_OFFLOADED one is on no host.
ON_HOST = (
    *("BUILD", "ACTIVE", "SHUTOFF", "REBOOT", "HARD_REBOOT", "PAUSED", "SUSPENDED"),
    "SHELVED",
)
# A server moving between hosts (``domain.moves``): its guest belongs on ``host`` (the
# destination, once placed) and, for a migration, on its source too, kept for a revert.
MOVING = ("REBUILD", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE")


def wanted_power(server: Server) -> Literal["running", "shutdown"] | None:
    """The power state the host should show; None while a boot or a command is under way
    (the agent then reports nothing for it: what it sees is about to change, and a report
    read before a boot started its domain would land after the boot made it ACTIVE)."""
    if server.status == "BUILD" or server.status in MOVING or server.task_state is not None:
        return None
    if server.status == "PAUSED":
        return None  # paused by the tenant: neither started nor stopped by a reconcile
    # A suspended guest is a shut-off domain with a managed save image.
    return "shutdown" if server.status in ("SHUTOFF", "SUSPENDED", "SHELVED") else "running"


async def host_state(deps: Deps, host: str) -> HostState:
    """The servers whose guest belongs on ``host``, each with the power state wanted and
    the NICs it has (hot-plugged ones too); anything else of ours there is an orphan.

    A server evacuated away is not listed on its old host (which removes its copy when
    it comes back); one migrating away is, until the migration is confirmed."""
    async with transaction(deps.runtime.sessions) as session:
        kept = select(Migration.server_id).where(
            Migration.source_host == host,
            Migration.kind == "migration",
            Migration.status.in_(("migrating", "finished", "reverting")),
        )
        rows = await session.scalars(
            select(Server).where(
                or_(
                    and_(Server.host == host, Server.status.in_(ON_HOST + MOVING)),
                    and_(Server.id.in_(kept), Server.status.in_(MOVING)),
                )
            )
        )
        servers = [
            DesiredServer(
                server_id=r.id,
                generation=r.generation,
                power_state=wanted_power(r),
                nics=[nic_wire(n) for n in attached_nics(r)],
            )
            for r in rows
        ]
    return HostState(host=host, servers=servers)
