"""The desired state of one server as its compute-agent receives it (``spawn``).

{"server_id", "name", "generation", "vcpus", "ram_mb", "disk_gb",
 "image": {"id", "disk_format": "qcow2"|"raw"|"aki-ari", "path", "kernel_path"?, "ramdisk_path"?,
           "cmdline"? (the image's os_command_line)},
 "nics": [{"port_id", "mac", "bridge", "mtu"}] (bound at boot or attached since),
 "config_drive": {"meta_data": {...}, "network_data": {"links", "networks", "services"},
                  "user_data": base64 | None},
 "volumes": [{"volume_id", "device", "connection"}]}
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Image, Server, VolumeAttachment
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


async def image_spec(session: AsyncSession, store: ImageStore, server: Server) -> dict[str, Any]:
    """How the agent boots: a disk image, or a kernel (and ramdisk) named by properties."""
    image = await _active_image(session, server.image_id, server.project_id)
    props = image.properties or {}
    spec: dict[str, Any] = {"id": image.id, "path": str(store.path(image.id))}
    kernel_id = props.get("kernel_id") or (image.id if image.disk_format == "aki" else None)
    if kernel_id:
        kernel = await _active_image(session, kernel_id, server.project_id)
        kernel_path = str(store.path(kernel.id))
        # A machine image without data of its own boots from its kernel alone.
        path = spec["path"] if image.size else kernel_path
        spec |= {"disk_format": "aki-ari", "path": path, "kernel_path": kernel_path}
        if props.get("ramdisk_id"):
            ramdisk = await _active_image(session, props["ramdisk_id"], server.project_id)
            spec["ramdisk_path"] = str(store.path(ramdisk.id))
        if props.get("os_command_line"):
            spec["cmdline"] = props["os_command_line"]
        return spec
    if image.disk_format not in ("qcow2", "raw"):
        raise invalid(f"Image {image.id} ({image.disk_format}) cannot be booted.")
    return spec | {"disk_format": image.disk_format}


def nic_wire(nic: dict[str, Any]) -> dict[str, Any]:
    """A bound NIC as its agent gets it (spawn, attach_interface, the reconcile's list)."""
    keys = ("port_id", "mac", "bridge", "mtu")
    return {key: nic[key] for key in keys}


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
        "availability_zone": "nova",
        "project_id": server.project_id,
        "public_keys": keys,
        "keys": [{"name": k, "type": "ssh", "data": v} for k, v in keys.items()],
        "meta": dict(server.meta or {}),
    }


async def server_state(session: AsyncSession, store: ImageStore, server: Server) -> dict[str, Any]:
    nics = attached_nics(server)
    attached = await session.scalars(
        select(VolumeAttachment).where(
            VolumeAttachment.server_id == server.id, VolumeAttachment.status == "attached"
        )
    )
    return {
        "server_id": server.id,
        "name": server.name,
        "generation": server.generation,
        "vcpus": server.vcpus,
        "ram_mb": server.ram_mb,
        "disk_gb": server.disk_gb,
        "image": await image_spec(session, store, server),
        "nics": [nic_wire(n) for n in nics],
        "config_drive": {
            "meta_data": meta_data(server),
            "network_data": network_data(nics),
            "user_data": server.user_data,
        },
        "volumes": [
            {"volume_id": a.volume_id, "device": a.device, "connection": a.connection}
            for a in attached
        ],
    }
