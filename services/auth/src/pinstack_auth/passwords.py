"""Argon2id hashing, always off the event loop (a hash costs tens of milliseconds of CPU)."""

from __future__ import annotations

import asyncio

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

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> Verification:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> Verification:
        try:
            self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(matches=False, needs_rehash=False)
        # Cost parameters raised in settings take effect at the user's next successful login.
        return Verification(
            matches=True, needs_rehash=self._hasher.check_needs_rehash(password_hash)
        )
