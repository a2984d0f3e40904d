"""Argon2id hashing, always off the event loop (a hash costs tens of milliseconds of CPU)."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["PasswordHasher", "Verification"]


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
    ) -> None:
        # Bounds memory (each hash holds ``memory_cost_kib``) and keeps threads for other work.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._hasher = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> Verification:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

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
