"""Password hashes: argon2id at OWASP's minimum cost (19 MiB, 2 passes, 1 lane).

    passwords = Passwords()
    stored = await passwords.hash("s3cret")     # "$argon2id$v=19$m=19456,t=2,p=1$..."
    await passwords.verify(stored, "s3cret")    # True
    await passwords.verify(None, "guess")       # False, after as long as a real check

A hash or a check costs tens of milliseconds of CPU, so both run in a worker thread and
the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19456
TIME_COST = 2
PARALLELISM = 1
# Keystone's limit: longer inputs only cost CPU.
MAX_PASSWORD_LENGTH = 4096


def default_hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


class Passwords:
    """Hashes and checks passwords off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or default_hasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; None (no such user) is never a match."""
        if stored is None:
            # Check against a throw-away hash: an unknown user costs as long as a wrong password.
            await asyncio.to_thread(self._matches, await self._dummy_hash(), password)
            return False
        return await asyncio.to_thread(self._matches, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with other parameters than today's."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        return self._dummy
