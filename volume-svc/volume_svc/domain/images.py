"""Volumes made from an image: the ``imageRef`` looked up as the caller, Cinder's checks
and its ``volume_image_metadata``; and images made from a volume
(``os-volume_upload_image``).

    image = await resolve(deps.images, body.get("imageRef"), identity)   # before the row
    vol = await volumes.create(session, ctx, settings, body, image=image)

The bytes move later, host-side (``flows.finish_create`` gives the agent the image API's
file URL and the caller's identity; ``drivers.images`` downloads and converts them).
"""

from __future__ import annotations

from typing import Any

from common_rpc.errors import Conflict, NotFound

from ..clients import ImageApi, ImageInfo
from ..db.models import Volume
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


# os-volume_upload_image: Cinder's schema (``volume_actions.volume_upload_image``).
UPLOAD_KEYS = (
    "image_name", "force", "disk_format", "container_format", "visibility", "protected",
)  # fmt: skip
UPLOAD_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")
VISIBILITIES = ("public", "private", "shared", "community")


def upload_args(args: Any) -> dict[str, Any]:
    """The action's arguments with Cinder's defaults (raw, bare, private)."""
    field = "os-volume_upload_image"
    if not isinstance(args, dict):
        raise checks.field_error(field, args, f"{args!r} is not of type 'object'")
    extra = [k for k in args if k not in UPLOAD_KEYS]
    if extra:
        raise checks.additional(field, args, extra)
    if "image_name" not in args:
        raise checks.required(field, args, "image_name")
    name = args["image_name"]
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise checks.field_error("image_name", name, f"{name!r} is not a valid image name")
    disk_format = args.get("disk_format") or "raw"
    if disk_format not in UPLOAD_FORMATS:
        raise checks.field_error(
            "disk_format", disk_format, f"{disk_format!r} is not one of {list(UPLOAD_FORMATS)!r}"
        )
    container = args.get("container_format") or "bare"
    if container != "bare":
        raise checks.field_error("container_format", container, f"{container!r} is not 'bare'")
    visibility = args.get("visibility") or "private"
    if visibility not in VISIBILITIES:
        raise checks.field_error(
            "visibility", visibility, f"{visibility!r} is not one of {list(VISIBILITIES)!r}"
        )
    return {
        "image_name": name,
        "force": args.get("force") is not None and checks.boolean(args["force"], "force"),
        "disk_format": disk_format,
        "container_format": container,
        "visibility": visibility,
        "protected": args.get("protected") is not None
        and checks.boolean(args["protected"], "protected"),
    }


def check_uploadable(vol: Volume, force: bool) -> None:
    if vol.status == "available" or (vol.status == "in-use" and force):
        return
    raise invalid(
        f"Invalid volume: Volume {vol.id} status must be available or in-use (with force) "
        f"to upload an image, but the current status is {vol.status}."
    )


def upload_holder(image_id: str) -> str:
    """The ``task_owner`` of a volume held ``uploading`` into this image."""
    return f"upload:{image_id}"


def upload_view(vol: Volume, image: ImageInfo, fields: dict[str, Any]) -> dict[str, Any]:
    """Cinder's answer to os-volume_upload_image."""
    vtype = vol.volume_type
    return {
        "id": vol.id,
        "updated_at": None,
        "status": vol.status,
        "display_description": vol.description,
        "size": vol.size,
        "volume_type": (
            {"id": vtype.id, "name": vtype.name, "description": vtype.description}
            if vtype is not None
            else None
        ),
        "image_id": image.id,
        "container_format": fields["container_format"],
        "disk_format": fields["disk_format"],
        "image_name": fields["image_name"],
        "visibility": fields["visibility"],
        "protected": fields["protected"],
    }
