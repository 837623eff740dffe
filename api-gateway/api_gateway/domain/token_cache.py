"""A small in-process memory of validated tokens, so most requests skip the database.

    cache = TokenCache(ttl_s=5.0, size=10_000)
    epoch = cache.epoch
    info = cache.get(digest, now)          # None: not cached, too old, or the token expired
    cache.put(digest, info, epoch)         # ignored when a revoke happened since ``epoch``
    cache.drop(digest); cache.forget(user_id); cache.forget()

Entries live ``ttl_s`` seconds (other replicas' revokes show within that time) and the
oldest go first beyond ``size``. A revoke in this process takes effect at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime
from typing import Generic, Protocol, TypeVar


class _Cached(Protocol):
    @property
    def user_id(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...


T = TypeVar("T", bound=_Cached)


class TokenCache(Generic[T]):
    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s = ttl_s
        self.size = size
        # digest -> (monotonic time it was read, what it stood for then); oldest first.
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        # Bumped by every drop and forget: a read that started before one is not kept.
        self.epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str, now: datetime) -> T | None:
        hit = self._entries.get(digest)
        if hit is None:
            return None
        read_at, value = hit
        if time.monotonic() - read_at > self.ttl_s or value.expires_at <= now:
            del self._entries[digest]
            return None
        return value

    def put(self, digest: str, value: T, epoch: int) -> None:
        if self.ttl_s <= 0 or self.size <= 0 or epoch != self.epoch:
            return
        self._entries[digest] = (time.monotonic(), value)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, digest: str) -> None:
        self.epoch += 1
        self._entries.pop(digest, None)

    def forget(self, user_id: str | None = None) -> None:
        """Drop every entry (of one user, or all)."""
        self.epoch += 1
        if user_id is None:
            self._entries.clear()
            return
        for digest in [d for d, (_, v) in self._entries.items() if v.user_id == user_id]:
            del self._entries[digest]
