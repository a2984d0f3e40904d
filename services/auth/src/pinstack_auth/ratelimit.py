"""Login-failure limits per account and per client address (moving window, counters in Redis).

Only failures count: a user who types the password right is never slowed down, and a success
clears that account's failures. Redis trouble fails open (logged): a lost counter store must not
lock every user out, and Argon2 already makes each guess expensive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from pinstack_common.errors import RateLimitedError

__all__ = ["DisabledLoginLimiter", "LoginLimiter", "RedisLoginLimiter", "redis_login_limiter"]

log = structlog.get_logger(__name__)


class LoginLimiter(Protocol):
    async def check(self, *, address: str, account: str | None = None) -> None:
        """Raise :class:`RateLimitedError` if the address (or account) is over its limit."""

    async def failed(self, *, address: str, account: str | None = None) -> None: ...

    async def succeeded(self, *, account: str) -> None: ...


class DisabledLoginLimiter:
    """``PINSTACK_RATE_LIMITS_ENABLED=false``: benchmarks and load tests."""

    async def check(self, *, address: str, account: str | None = None) -> None:
        return None

    async def failed(self, *, address: str, account: str | None = None) -> None:
        return None

    async def succeeded(self, *, account: str) -> None:
        return None


class RedisLoginLimiter:
    def __init__(
        self,
        *,
        limiter: MovingWindowRateLimiter,
        per_account: Sequence[RateLimitItem],
        per_address: Sequence[RateLimitItem],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._per_account = list(per_account)
        self._per_address = list(per_address)
        self._wall_clock = wall_clock

    def _items(self, *, address: str, account: str | None) -> list[tuple[RateLimitItem, str]]:
        items = [(item, f"address:{address}") for item in self._per_address]
        if account is not None:
            items += [(item, f"account:{account}") for item in self._per_account]
        return items

    async def check(self, *, address: str, account: str | None = None) -> None:
        try:
            for item, key in self._items(address=address, account=account):
                if not await self._limiter.test(item, "login-failures", key):
                    stats = await self._limiter.get_window_stats(item, "login-failures", key)
                    wait = math.ceil(stats.reset_time - self._wall_clock())
                    raise RateLimitedError(retry_after=wait)
        except (RedisError, OSError) as error:
            log.warning("rate-limit store unavailable, not limiting", error=str(error))

    async def failed(self, *, address: str, account: str | None = None) -> None:
        try:
            for item, key in self._items(address=address, account=account):
                await self._limiter.hit(item, "login-failures", key)
        except (RedisError, OSError) as error:
            log.warning("rate-limit store unavailable, failure not counted", error=str(error))

    async def succeeded(self, *, account: str) -> None:
        try:
            for item in self._per_account:
                await self._limiter.clear(item, "login-failures", f"account:{account}")
        except (RedisError, OSError) as error:
            log.warning("rate-limit store unavailable, failures not cleared", error=str(error))


def redis_login_limiter(
    *, redis_url: str, connection_pool: Any, per_account: str, per_address: str
) -> RedisLoginLimiter:
    """A limiter sharing the component's Redis connection pool (closed with it)."""
    storage = RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        key_prefix="pinstack:auth:limits",
        connection_pool=connection_pool,
    )
    return RedisLoginLimiter(
        limiter=MovingWindowRateLimiter(storage),
        per_account=parse_many(per_account),
        per_address=parse_many(per_address),
    )
