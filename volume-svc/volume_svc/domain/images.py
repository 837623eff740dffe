"""Volumes made from an image: the ``imageRef`` looked up as the caller, Cinder's checks
and its ``volume_image_metadata``.

    image = await resolve(deps.images, body.get("imageRef"), identity)   # before the row
    vol = await volumes.create(session, ctx, settings, body, image=image)

The bytes move later, host-side (``flows.finish_create`` gives the agent the image API's
file URL and the caller's identity; ``drivers.images`` downloads and converts them).
"""

from __future__ import annotations

from typing import Any

from common_rpc.errors import Conflict, NotFound

from ..clients import ImageApi, ImageInfo
from . import checks
from .errors import invalid

GIB = 1 << 30
# Glance's disk formats a volume host converts (``drivers.images.QEMU_FORMATS``' keys).
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "iso")
NOT_FOUND = "Invalid image identifier or unable to access requested image."


async def resolve(api: ImageApi, ref: Any, identity: str | None) -> ImageInfo | None:
    """The image ``ref`` names (an id, else a name the caller sees), checked usable."""
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        raise checks.field_error("imageRef", ref, f"{ref!r} is not of type 'string', 'null'")
    if not identity:
        raise invalid(NOT_FOUND)
    try:
        if checks.is_uuid(ref):
            image = await api.show(ref, identity)
        else:
            found = await api.find(ref, identity)
            if len(found) > 1:
                raise Conflict(
                    f"Multiple matches found for '{ref}', use an ID to be more specific."
                )
            if not found:
                raise invalid(NOT_FOUND)
            image = found[0]
    except NotFound:
        raise invalid(NOT_FOUND) from None
    if image.status != "active":
        raise invalid(f"Invalid image identifier: Image {image.id} is not active.")
    if image.disk_format not in DISK_FORMATS:
        raise invalid(f"Image disk format {image.disk_format} is not supported for volumes.")
    return image


def check_size(image: ImageInfo, size: int) -> None:
    """Cinder's ``_check_image_metadata``: the image's bytes and its min_disk fit."""
    image_gb = -(-(image.size or 0) // GIB)
    if image_gb > size:
        raise invalid(f"Size of specified image {image_gb}GB is larger than volume size {size}GB.")
    if image.min_disk > size:
        raise invalid(
            f"Volume size {size}GB cannot be smaller than the image minDisk size "
            f"{image.min_disk}GB."
        )


def metadata(image: ImageInfo) -> dict[str, str]:
    """Cinder's ``volume_image_metadata``: strings, as Cinder's glance metadata table."""
    values = {
        "image_id": image.id,
        "image_name": image.name,
        "checksum": image.checksum,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "size": image.size,
    }
    return {k: str(v) for k, v in values.items() if v is not None}
