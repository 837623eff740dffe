"""Image data on local disk: one file per image id under the store's root.

Writes go to a temporary file that is renamed into place only once complete, so a
half-uploaded image is never visible under its id.

    store = ImageStore(settings.image_store)
    stored = await store.write(image_id, request.stream(), cap=settings.image_size_cap)
    stored.size, stored.md5, stored.sha512
    store.path(image_id)          # what the agent gets in the boot's desired state
    store.delete(image_id)
    staged = store.staging(image_id)   # where a host writes a server's snapshot
    stored = store.adopt(image_id)     # ... taken in once complete (blocking: a thread)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from common_rpc.errors import QuotaExceeded


@dataclass(frozen=True)
class Stored:
    size: int
    md5: str
    sha512: str


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, image_id: str) -> Path:
        # Ids are UUIDs we made; parsing refuses anything that could leave the root.
        return self.root.resolve() / str(uuid.UUID(image_id))

    def has(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    async def write(self, image_id: str, chunks: AsyncIterator[bytes], *, cap: int) -> Stored:
        """Stream ``chunks`` into place; over ``cap`` bytes raises 413 and keeps nothing."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(image_id)
        partial = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
        md5 = hashlib.md5(usedforsecurity=False)
        sha512 = hashlib.sha512()
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > cap:
                        raise QuotaExceeded(f"Image exceeds the storage limit of {cap} bytes.")
                    md5.update(chunk)
                    sha512.update(chunk)
                    out.write(chunk)
                await asyncio.to_thread(os.fsync, out.fileno())
            partial.replace(final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return Stored(size, md5.hexdigest(), sha512.hexdigest())

    def staging(self, image_id: str) -> Path:
        """Where a compute host writes a snapshot of a server for the image: in the
        store's root (hidden, never visible under the id) so taking it in is a rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(image_id)
        return final.with_name(f".{final.name}.snapshot")

    def adopt(self, image_id: str) -> Stored:
        """The staged file hashed and renamed into place as the image's data (blocking:
        run it in a thread). A missing staged file is FileNotFoundError."""
        staged = self.staging(image_id)
        md5 = hashlib.md5(usedforsecurity=False)
        sha512 = hashlib.sha512()
        size = 0
        with staged.open("rb") as src:
            while chunk := src.read(1024 * 1024):
                size += len(chunk)
                md5.update(chunk)
                sha512.update(chunk)
        staged.replace(self.path(image_id))
        return Stored(size, md5.hexdigest(), sha512.hexdigest())

    def delete(self, image_id: str) -> None:
        """The data and any staged snapshot of it."""
        self.path(image_id).unlink(missing_ok=True)
        self.staging(image_id).unlink(missing_ok=True)
