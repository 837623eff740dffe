"""An image's bytes onto a volume host and back: download from the Image v2 API and
convert to raw; convert a volume to an image's format and upload it.

    size = download(url, identity, scratch, timeout=60, md5=checksum)
    to_raw(scratch, partial_path, "qcow2", size_bytes=2 << 30)
    upload(volume_path, url, identity, "qcow2", scratch, timeout=60)

The download runs as the caller (their signed identity in ``X-Stackling-Identity``); its
md5 is checked against Glance's ``checksum``. ``qemu-img`` reads the image with the format
the image API declared (never probed), and an image with a backing file is refused: a
qcow2 naming a file on the host must not pull that file into a tenant's volume.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

from common_rpc.chassis import commands
from common_rpc.chassis.identity import IDENTITY_HEADER

from .base import CommandError, DriverError

# Glance's disk formats a volume can be made from, as qemu-img names them.
QEMU_FORMATS = {
    "raw": "raw",
    "qcow2": "qcow2",
    "vmdk": "vmdk",
    "vdi": "vdi",
    "vhd": "vpc",
    "vhdx": "vhdx",
    "iso": "raw",
}
_CHUNK = 1 << 20


def download(url: str, identity: str, dest: Path, *, timeout: float, md5: str | None = None) -> int:
    """Stream ``url`` into ``dest``; its size. Raises DriverError (``dest`` removed) on a
    refused or broken download or a checksum that does not match."""
    request = urllib.request.Request(url, headers={IDENTITY_HEADER: identity})
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer, open(dest, "wb") as out:
            if answer.status != 200:
                raise DriverError(f"the image API answered {answer.status} (no data)")
            while chunk := answer.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise DriverError(f"the image API refused the download: {exc.code}") from None
    except (OSError, DriverError) as exc:
        dest.unlink(missing_ok=True)
        raise DriverError(f"image download failed: {exc}") from None
    if md5 and digest.hexdigest() != md5:
        dest.unlink(missing_ok=True)
        raise DriverError("the image's bytes do not match its checksum")
    return size


def to_raw(source: Path, dest: Path, disk_format: str, size_bytes: int) -> None:
    """``dest`` (absent before) holds ``source`` as raw, grown to ``size_bytes``."""
    fmt = QEMU_FORMATS.get(disk_format)
    if fmt is None:
        raise DriverError(f"disk format {disk_format!r} cannot be made a volume")
    info = json.loads(_qemu_img("info", "-f", fmt, "--output=json", str(source)))
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise DriverError("an image with a backing file is refused")
    if int(info.get("virtual-size", 0)) > size_bytes:
        raise DriverError(
            f"the image's virtual size ({info.get('virtual-size')} bytes) does not fit "
            f"in the volume ({size_bytes} bytes)"
        )
    try:
        _qemu_img("convert", "-f", fmt, "-O", "raw", str(source), str(dest), timeout=3600)
        with open(dest, "r+b") as f:
            f.truncate(size_bytes)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _qemu_img(*args: str, timeout: float = 60.0) -> str:
    return commands.run(["qemu-img", *args], timeout=timeout, error=CommandError)


def upload(
    source: Path, url: str, identity: str, disk_format: str, scratch: Path, *, timeout: float
) -> int:
    """PUT the volume ``source`` to the image file ``url`` in ``disk_format`` (converted
    into ``scratch`` first unless raw, removed afterwards); the bytes sent."""
    fmt = QEMU_FORMATS.get(disk_format)
    if fmt is None:
        raise DriverError(f"disk format {disk_format!r} cannot be made from a volume")
    try:
        if fmt == "raw":
            data = source
        else:
            scratch.unlink(missing_ok=True)
            _qemu_img("convert", "-f", "raw", "-O", fmt, str(source), str(scratch), timeout=3600)
            data = scratch
        size = data.stat().st_size
        headers = {
            IDENTITY_HEADER: identity,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        }
        with open(data, "rb") as body:
            request = urllib.request.Request(url, data=body, headers=headers, method="PUT")
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read()
        return size
    except urllib.error.HTTPError as exc:
        raise DriverError(f"the image API refused the upload: {exc.code}") from None
    except OSError as exc:
        raise DriverError(f"image upload failed: {exc}") from None
    finally:
        scratch.unlink(missing_ok=True)
