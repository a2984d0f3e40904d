"""Login limits per account, per (account, client address) and per address (moving windows in
Redis, via the ``limits`` library).

Two kinds of counting:

* **Attempts on an account** are reserved *before* the password is checked, with ``limits``'
  atomic ``hit()`` (one Lua script in Redis: count and compare in one step). A refused hit is
  the limit, so N parallel guesses never get more than the limit's worth of password checks.
  Each attempt first counts against its (account, address) pair — what one source may try on
  one account — and only then against the account's higher ceiling (all sources together). An
  attacker hammering from one address is refused at the pair and consumes none of the ceiling,
  so the owner logging in from elsewhere still gets through. A success clears the account's
  counters (the ceiling and that pair): the user typing the password right is never slowed down.
* **Failures from an address** (stops spraying many accounts) count only failures, checked
  before and counted after: a success must not use up an office's or a test suite's allowance.
  Parallel requests can pass that coarse brake by the number in flight; the account limits above
  are what bound guesses at any one password.

Redis trouble fails open, counted and logged once per outage
(``pinstack_common.security.failopen``): a lost counter store must not lock every user out, and
Argon2 already makes each guess expensive.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter

from pinstack_common.errors import RateLimitedError
from pinstack_common.security.failopen import FailOpen
from pinstack_common.security.ratelimit import refusal

__all__ = ["DisabledLoginLimiter", "LoginLimiter", "RedisLoginLimiter", "login_limiter"]

_NAMESPACE = "login-failures"


class LoginLimiter(Protocol):
    async def check_address(self, *, address: str) -> None:
        """Raise :class:`RateLimitedError` if the address is over its failure limit."""

    async def attempt(self, *, address: str, account: str) -> None:
        """Count an attempt on ``account`` from ``address`` atomically, before the password is
        checked; raise :class:`RateLimitedError` (counting nothing more) if it is refused."""

    async def failed(self, *, address: str) -> None:
        """Count a failed login (wrong password or unknown login) against the address."""

    async def succeeded(self, *, address: str, account: str) -> None:
        """The password was right: forget the account's attempts (ceiling and this pair)."""


class DisabledLoginLimiter:
    """``PINSTACK_RATE_LIMITS_ENABLED=false``: benchmarks and load tests."""

    async def check_address(self, *, address: str) -> None:
        return None

    async def attempt(self, *, address: str, account: str) -> None:
        return None

    async def failed(self, *, address: str) -> None:
        return None

    async def succeeded(self, *, address: str, account: str) -> None:
        return None


class RedisLoginLimiter:
    def __init__(
        self,
        *,
        limiter: MovingWindowRateLimiter,
        per_account: Sequence[RateLimitItem],
        per_account_address: Sequence[RateLimitItem],
        per_address: Sequence[RateLimitItem],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._per_account = list(per_account)
        self._per_account_address = list(per_account_address)
        self._per_address = list(per_address)
        self._wall_clock = wall_clock
        self._store = FailOpen(component="auth", consequence="logins not limited")

    def _account_items(self, *, address: str, account: str) -> list[tuple[RateLimitItem, str]]:
        # The pair first: a refusal there must not consume the owner's account ceiling.
        pair = f"account:{account}:address:{address}"
        return [(item, pair) for item in self._per_account_address] + [
            (item, f"account:{account}") for item in self._per_account
        ]

    async def _refuse(self, item: RateLimitItem, key: str) -> RateLimitedError:
        return await refusal(self._limiter, item, _NAMESPACE, key, wall_clock=self._wall_clock)

    async def check_address(self, *, address: str) -> None:
        with self._store.guard():
            for item in self._per_address:
                key = f"address:{address}"
                if not await self._limiter.test(item, _NAMESPACE, key):
                    raise await self._refuse(item, key)

    async def attempt(self, *, address: str, account: str) -> None:
        with self._store.guard():
            for item, key in self._account_items(address=address, account=account):
                if not await self._limiter.hit(item, _NAMESPACE, key):
                    raise await self._refuse(item, key)

    async def failed(self, *, address: str) -> None:
        with self._store.guard():
            for item in self._per_address:
                await self._limiter.hit(item, _NAMESPACE, f"address:{address}")

    async def succeeded(self, *, address: str, account: str) -> None:
        with self._store.guard():
            for item, key in self._account_items(address=address, account=account):
                await self._limiter.clear(item, _NAMESPACE, key)


def login_limiter(
    windows: MovingWindowRateLimiter | None,
    *,
    per_account: str,
    per_account_address: str,
    per_address: str,
) -> LoginLimiter:
    """The limiter over ``windows`` (the runtime's; None when rate limits are off)."""
    if windows is None:
        return DisabledLoginLimiter()
    return RedisLoginLimiter(
        limiter=windows,
        per_account=parse_many(per_account),
        per_account_address=parse_many(per_account_address),
        per_address=parse_many(per_address),
    )
