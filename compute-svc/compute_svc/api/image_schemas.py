"""``/v2/schemas/{image,images,member,members}``: Glance's JSON schemas of what this
image API answers (glanceclient and Tempest read them), built from the domain's own
formats, statuses and visibilities so they never say more than is served.

An image is permissive (extra properties are strings); a collection has ``first``,
``next`` and ``schema`` and Glance's link templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..domain import images

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]  # fmt: skip


def _read_only(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **extra}


def _image_properties() -> dict[str, Any]:
    nullable_text = ["null", "string"]
    return {
        "id": {"type": "string", "description": "An identifier for the image",
               "pattern": UUID_PATTERN},
        "name": {"type": nullable_text, "description": "Descriptive name for the image",
                 "maxLength": 255},
        "status": _read_only("string", "Status of the image", enum=STATUSES),
        "visibility": {"type": "string", "description": "Scope of image accessibility",
                       "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean",
                      "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean", "description":
                      "If true, image will not appear in default image list response."},
        "checksum": _read_only(nullable_text, "md5 hash of image contents.", maxLength=32),
        "os_hash_algo": _read_only(nullable_text, "Algorithm to calculate the os_hash_value",
                                   maxLength=64),
        "os_hash_value": _read_only(nullable_text, "Hexdigest of the image contents using "
                                    "the algorithm specified by the os_hash_algo",
                                    maxLength=128),
        "owner": {"type": nullable_text, "description": "Owner of the image",
                  "maxLength": 255},
        "size": _read_only(["null", "integer"], "Size of image file in bytes"),
        "virtual_size": _read_only(["null", "integer"], "Virtual size of image in bytes"),
        "container_format": {"type": nullable_text, "description": "Format of the container",
                             "enum": [None, *images.CONTAINER_FORMATS]},
        "disk_format": {"type": nullable_text, "description": "Format of the disk",
                        "enum": [None, *images.DISK_FORMATS]},
        "created_at": _read_only("string", "Date and time of image registration"),
        "updated_at": _read_only("string", "Date and time of the last image modification"),
        "tags": {"type": "array", "description": "List of strings related to the image",
                 "items": {"type": "string", "maxLength": 255}},
        "direct_url": _read_only("string",
                                 "URL to access the image file kept in external store"),
        "min_ram": {"type": "integer",
                    "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer",
                     "description": "Amount of disk space (in GB) required to boot image."},
        "self": _read_only("string", "An image self url"),
        "file": _read_only("string", "An image file url"),
        "schema": _read_only("string", "An image schema url"),
        "locations": {
            "type": "array",
            "description": "A set of URLs to access the image file kept in external store",
            "items": {
                "type": "object",
                "properties": {"url": {"type": "string", "maxLength": 255},
                               "metadata": {"type": "object"}},
                "required": ["url", "metadata"],
            },
        },
        "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
                      "description": "ID of image stored in Glance that should be used as "
                      "the kernel when booting an AMI-style image."},
        "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
                       "description": "ID of image stored in Glance that should be used as "
                       "the ramdisk when booting an AMI-style image."},
    }  # fmt: skip


def image() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": _image_properties(),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "member_id": {
                "type": "string",
                "description": "An identifier for the image member (tenantId)",
            },
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": UUID_PATTERN,
            },
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": list(images.MEMBER_STATUSES),
            },
            "schema": {"readOnly": True, "type": "string"},
        },
        "additionalProperties": False,
    }


def _collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "image": image,
    "images": lambda: _collection("images", image()),
    "member": member,
    "members": lambda: _collection("members", member()),
}
