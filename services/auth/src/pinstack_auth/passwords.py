"""Argon2id hashing, always off the event loop (a hash costs tens of milliseconds of CPU).

Concurrency is bounded (``max_concurrent`` hashes at once: each holds its memory) and so is the
queue in front of it (``max_queued`` waiting, each for at most ``queue_timeout_seconds``). A burst
beyond that is refused at once with :class:`RateLimitedError` (429 ``too many requests`` with
``Retry-After``) instead of waiting until the caller's deadline turns it into a gateway timeout.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pinstack_common.errors import RateLimitedError

__all__ = ["PasswordHasher", "Verification"]

_T = TypeVar("_T")


class Verification:
    """The outcome of a check: whether it matched, and whether the hash should be upgraded."""

    __slots__ = ("matches", "needs_rehash")

    def __init__(self, *, matches: bool, needs_rehash: bool) -> None:
        self.matches = matches
        self.needs_rehash = needs_rehash


class PasswordHasher:
    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost_kib: int = 19 * 1024,
        parallelism: int = 1,
        max_concurrent: int = 8,
        max_queued: int = 16,
        queue_timeout_seconds: float = 2.0,
    ) -> None:
        # Bounds memory (each hash holds ``memory_cost_kib``) and keeps threads for other work.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._capacity = max_concurrent + max_queued
        self._queue_timeout = queue_timeout_seconds
        self._admitted = 0  # running or waiting for a slot
        self._hasher = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()

    @property
    def admitted(self) -> int:
        """Hashes running or queued right now."""
        return self._admitted

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> Verification:
        return await self._run(self._verify, password_hash, password)

    async def _run(self, work: Callable[..., _T], *args: str) -> _T:
        if self._admitted >= self._capacity:
            raise RateLimitedError(retry_after=1)
        self._admitted += 1
        try:
            try:
                async with asyncio.timeout(self._queue_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise RateLimitedError(retry_after=1) from None
            # The slot is held until the thread is done, even if the caller gives up first:
            # an abandoned hash still uses its memory and a core.
            running = asyncio.ensure_future(asyncio.to_thread(work, *args))
            running.add_done_callback(lambda _: self._slots.release())
            return await asyncio.shield(running)
        finally:
            self._admitted -= 1

    async def verify_dummy(self, password: str) -> None:
        """Spend what a real check costs when there is nothing to check against (an unknown
        login): answering faster would tell who has an account."""
        await self.verify(await self._dummy(), password)

    async def _dummy(self) -> str:
        # Made once, on first use, with the current cost parameters (no work at construction).
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
            return self._dummy_hash

    def _verify(self, password_hash: str, password: str) -> Verification:
        try:
            self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(matches=False, needs_rehash=False)
        # Cost parameters raised in settings take effect at the user's next successful login.
        return Verification(
            matches=True, needs_rehash=self._hasher.check_needs_rehash(password_hash)
        )
