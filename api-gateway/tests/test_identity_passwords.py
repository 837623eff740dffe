"""Password hashing: argon2id at OWASP's minimum cost, off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import Literal

from argon2 import PasswordHasher

from api_gateway.domain.passwords import Passwords


async def test_hash_is_argon2id_at_owasp_minimum() -> None:
    passwords = Passwords()
    stored = await passwords.hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify(stored, "correct horse")
    assert not await passwords.verify(stored, "wrong horse")
    assert not await passwords.verify("not a hash", "correct horse")
    assert not passwords.needs_rehash(stored)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
    assert passwords.needs_rehash(weak)


async def test_unknown_user_costs_as_much_as_a_wrong_password() -> None:
    hasher = CountingHasher()
    passwords = Passwords(hasher)
    stored = await passwords.hash("pw")
    await passwords.verify(None, "warm-up")  # the dummy hash is made once
    # The unknown user's check runs argon2 as a wrong password's does: one verification
    # each, with the same parameters (what makes their cost equal, whatever the load).
    hasher.verified = 0
    assert not await passwords.verify(stored, "nope")
    assert not await passwords.verify(None, "nope")
    assert hasher.verified == 2
    # And in time: the fastest of a few runs each (a loaded machine only ever adds time).
    wrong = min([await _timed(passwords.verify(stored, "nope")) for _ in range(3)])
    unknown = min([await _timed(passwords.verify(None, "nope")) for _ in range(3)])
    assert unknown > wrong / 3


async def _timed(check: Awaitable[bool]) -> float:
    started = time.perf_counter()
    assert not await check
    return time.perf_counter() - started


class CountingHasher(PasswordHasher):
    """Counts the verifications it runs."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=19456, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


class SpyHasher(PasswordHasher):
    """Notes the thread each hash runs on."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=19456, parallelism=1)
        self.threads: list[int] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password, salt=salt)


async def test_hashing_runs_in_a_thread() -> None:
    hasher = SpyHasher()
    passwords = Passwords(hasher)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await passwords.hash("pw")
    task.cancel()
    assert hasher.threads and hasher.threads[0] != threading.get_ident()
    assert ticks > 1  # the loop kept running while the hash was computed
