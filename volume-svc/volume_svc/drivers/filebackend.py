"""Volumes as sparse raw files in one storage directory.

Creating a volume allocates nothing but the file's size; snapshots and clones copy the
data for real, skipping holes (SEEK_DATA/SEEK_HOLE), so an empty 10 GiB volume clones in
milliseconds and a written one copies exactly what was written.

    backend = FileBackend(Path("/var/lib/stackling/volumes"), prefix="t1-")
    backend.create("v1", size_gb=1)            # .../t1-volume-v1.img, 1 GiB sparse
    backend.snapshot("s1", "v1")               # .../t1-snapshot-s1.img, a full copy
    backend.clone("v2", backend.snapshot_path("s1"), size_gb=2)
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .base import DriverConfig, DriverError
from .images import to_raw

GIB = 1 << 30
_CHUNK = 64 << 20


def partial(path: Path) -> Path:
    """The name a copy is written under until it is complete."""
    return path.with_name(path.name + ".part")


def copy_sparse(source: Path, dest: Path, size_bytes: int | None = None) -> None:
    """Copy ``source`` to ``dest`` data extent by data extent; holes stay holes.

    ``size_bytes`` grows the copy before it takes ``dest``'s name, so ``dest`` never has
    a size other than its final one.
    """
    tmp = partial(dest)
    try:
        _copy_extents(source, tmp)
        if size_bytes is not None:
            with open(tmp, "r+b") as f:
                f.truncate(size_bytes)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed copy leaves no partial file behind
        raise
    tmp.replace(dest)


def _copy_extents(source: Path, tmp: Path) -> None:
    size = source.stat().st_size
    with open(source, "rb") as src, open(tmp, "wb") as dst:
        dst.truncate(size)
        fin, fout = src.fileno(), dst.fileno()
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fin, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after offset: the rest is a hole
                    break
                raise
            end = os.lseek(fin, start, os.SEEK_HOLE)
            pos = start
            while pos < end:
                done = os.copy_file_range(fin, fout, min(_CHUNK, end - pos), pos, pos)
                if done <= 0:
                    raise DriverError(f"copy of {source} stalled at byte {pos}")
                pos += done
            offset = end
        os.fsync(fout)


class FileBackend:
    def __init__(self, storage_dir: Path, *, prefix: str = "") -> None:
        self.storage_dir = storage_dir
        self.prefix = prefix
        storage_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_config(cls, config: DriverConfig) -> FileBackend:
        return cls(config.storage_dir, prefix=config.name_prefix)

    def volume_path(self, volume_id: str) -> Path:
        return self.storage_dir / f"{self.prefix}volume-{volume_id}.img"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.storage_dir / f"{self.prefix}snapshot-{snapshot_id}.img"

    def create(self, volume_id: str, size_gb: int) -> Path:
        path = self.volume_path(volume_id)
        if path.exists() and path.stat().st_size == size_gb * GIB:
            return path  # a repeated create after a lost reply
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as f:
            f.truncate(size_gb * GIB)
        tmp.replace(path)
        return path

    def clone(self, volume_id: str, source: Path, size_gb: int) -> Path:
        """A new volume holding ``source``'s bytes, grown to ``size_gb``."""
        if not source.exists():
            raise DriverError(f"clone source {source.name} does not exist")
        path = self.volume_path(volume_id)
        if source.stat().st_size > size_gb * GIB:
            raise DriverError(f"clone of {source.name} does not fit in {size_gb} GiB")
        copy_sparse(source, path, size_gb * GIB)
        return path

    def extend(self, volume_id: str, size_gb: int) -> Path:
        path = self.volume_path(volume_id)
        if not path.exists():
            raise DriverError(f"volume file {path.name} does not exist")
        if path.stat().st_size > size_gb * GIB:
            raise DriverError(f"volume {volume_id} is larger than {size_gb} GiB: not shrinking")
        with open(path, "r+b") as f:
            f.truncate(size_gb * GIB)
        return path

    def scratch_path(self, volume_id: str) -> Path:
        """Where an image is downloaded before it is converted into the volume."""
        return self.volume_path(volume_id).with_suffix(".download")

    def import_image(self, volume_id: str, source: Path, disk_format: str, size_gb: int) -> Path:
        """A new volume holding the image ``source`` converted to raw, of ``size_gb``."""
        path = self.volume_path(volume_id)
        tmp = partial(path)
        tmp.unlink(missing_ok=True)
        to_raw(source, tmp, disk_format, size_gb * GIB)
        tmp.replace(path)
        return path

    def delete(self, volume_id: str) -> None:
        path = self.volume_path(volume_id)
        path.unlink(missing_ok=True)
        # A copy into the volume (clone, restore, image) cut short by a killed agent.
        partial(path).unlink(missing_ok=True)
        self.scratch_path(volume_id).unlink(missing_ok=True)

    def snapshot(self, snapshot_id: str, volume_id: str) -> Path:
        source = self.volume_path(volume_id)
        if not source.exists():
            raise DriverError(f"volume file {source.name} does not exist")
        path = self.snapshot_path(snapshot_id)
        copy_sparse(source, path)
        return path

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.snapshot_path(snapshot_id).unlink(missing_ok=True)

    def _ids(self, kind: str) -> frozenset[str]:
        head, tail = f"{self.prefix}{kind}-", ".img"
        return frozenset(
            p.name[len(head) : -len(tail)]
            for p in self.storage_dir.glob(f"{head}*{tail}")
            if p.is_file()
        )

    def list_volumes(self) -> frozenset[str]:
        return self._ids("volume")

    def list_snapshots(self) -> frozenset[str]:
        return self._ids("snapshot")
