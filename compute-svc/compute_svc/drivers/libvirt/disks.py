"""Instance files: a cached base copy of each image, a qcow2 overlay per server.

The image service's file is copied once into ``<instances>/_base`` (QEMU then opens a
file this host owns, and a deleted image does not break running servers); each server
gets ``<instances>/<server_id>/disk``, a qcow2 overlay on that base, sized to its flavor.
A base no server uses any more is pruned once it is older than a minimum age.

    store = InstanceStore(Path("/var/lib/stackling/instances"))
    base = store.cached(image.image_id, image.path)
    store.create_overlay(store.disk(server_id), base, "qcow2", size_gb=1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from common_rpc.chassis import commands

GIB = 1024**3
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DiskError(RuntimeError):
    pass


class CommandError(commands.CommandError, DiskError):
    """qemu-img failed, timed out or is missing (the chassis' runner): a DiskError."""


def _qemu_img(*args: str, timeout: float = 120) -> str:
    return commands.run(["qemu-img", *args], timeout=timeout, error=CommandError)


def _name(ident: str) -> str:
    """A file name for an id; anything unusual is hashed rather than trusted."""
    if _SAFE.match(ident):
        return ident
    return hashlib.sha256(ident.encode()).hexdigest()


def virtual_size(path: Path, fmt: str) -> int:
    info = json.loads(_qemu_img("info", "--output=json", "-f", fmt, str(path)))
    return int(info["virtual-size"])


class InstanceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base_dir = root / "_base"

    def ensure_dirs(self) -> None:
        # QEMU runs as its own user: it must be able to walk to the files.
        for d in (self.root, self.base_dir):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)

    def server_dir(self, server_id: str) -> Path:
        return self.root / _name(server_id)

    def disk(self, server_id: str) -> Path:
        return self.server_dir(server_id) / "disk"

    def config_drive(self, server_id: str) -> Path:
        return self.server_dir(server_id) / "disk.config"

    def console_log(self, server_id: str) -> Path:
        return self.server_dir(server_id) / "console.log"

    def make_server_dir(self, server_id: str) -> Path:
        self.ensure_dirs()
        d = self.server_dir(server_id)
        d.mkdir(exist_ok=True)
        d.chmod(0o755)
        return d

    def cached(self, image_id: str, source: str, suffix: str = "") -> Path:
        """The base copy of an image file, made once (atomically) per image."""
        self.ensure_dirs()
        target = self.base_dir / (_name(image_id) + suffix)
        if target.exists():
            os.utime(target)  # in use again: pruning measures its age from now
            return target
        src = Path(source)
        if not src.is_file():
            raise DiskError(f"image file {source} is not readable on this host")
        fd, tmp = tempfile.mkstemp(dir=self.base_dir, prefix=".partial-")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def create_overlay(self, path: Path, base: Path, base_format: str, size_gb: int) -> None:
        """A qcow2 on ``base``, at least ``size_gb`` large; kept if it already exists."""
        if path.exists():
            return
        size = max(size_gb * GIB, virtual_size(base, base_format))
        tmp = path.with_name(path.name + ".partial")
        _qemu_img(
            "create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format, str(tmp), str(size)
        )
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def resize_copy(self, server_id: str) -> Path:
        """Where a resize on this host keeps the server's files for a revert (under
        ``_resize``: not a server directory, so the reconcile leaves it alone)."""
        return self.root / "_resize" / _name(server_id)

    def grow(self, path: Path, size_gb: int) -> None:
        """Make the disk ``size_gb`` large unless it already is (never shrunk)."""
        if path.exists() and size_gb * GIB > virtual_size(path, "qcow2"):
            _qemu_img("resize", "-q", "-f", "qcow2", str(path), str(size_gb * GIB))

    def snapshot(self, server_id: str, target: Path, *, shared: bool) -> None:
        """The server's root disk with its backing chain as one standalone qcow2 at
        ``target`` (written beside it, renamed when complete). ``shared``: QEMU holds the
        disk open (a paused guest), so qemu-img reads it without taking its lock."""
        disk = self.disk(server_id)
        if not disk.is_file():
            raise DiskError(f"server {server_id} has no root disk on this host")
        partial = target.with_name(f".{target.name}.partial")
        args = ["convert", "-q", "-f", "qcow2", "-O", "qcow2"]
        try:
            _qemu_img(*args, *(["-U"] if shared else []), str(disk), str(partial), timeout=3600)
            partial.chmod(0o644)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def create_blank(self, path: Path, size_gb: int) -> None:
        if path.exists():
            return
        tmp = path.with_name(path.name + ".partial")
        _qemu_img("create", "-q", "-f", "qcow2", str(tmp), str(size_gb * GIB))
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def record_bases(self, server_id: str, bases: list[Path]) -> None:
        """Which cached files the server uses: pruning keeps them while it exists."""
        (self.server_dir(server_id) / "bases").write_text("".join(f"{b.name}\n" for b in bases))

    def prune_bases(self, min_age_s: float) -> list[str]:
        """Remove cached images no server uses and nobody wrote for ``min_age_s`` seconds."""
        if not self.base_dir.is_dir():
            return []
        used: set[str] = set()
        for owner in self.owners():
            try:
                used.update((self.server_dir(owner) / "bases").read_text().split())
            except FileNotFoundError:
                continue
        removed = []
        now = time.time()
        for path in self.base_dir.iterdir():
            if path.name in used or path.name.startswith(".partial-"):
                continue
            if now - path.stat().st_mtime >= min_age_s:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return sorted(removed)

    def remove(self, server_id: str) -> None:
        shutil.rmtree(self.server_dir(server_id), ignore_errors=True)
        self.drop_resize_copy(server_id)

    def drop_resize_copy(self, server_id: str) -> None:
        """The copy a resize kept, and ``_resize`` itself once no other copy is there."""
        kept = self.resize_copy(server_id)
        shutil.rmtree(kept, ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty: another server's resize
            kept.parent.rmdir()

    def owners(self) -> set[str]:
        """Names of the per-server directories (the server ids)."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("_")}
