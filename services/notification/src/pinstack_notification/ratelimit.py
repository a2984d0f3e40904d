"""Per-caller limits on ``send`` (moving window, counters in Redis through ``limits``).

Redis trouble fails open, counted and logged once per outage (``pinstack_common.failopen``):
losing the counter store must not stop notifications.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from pinstack_common.errors import RateLimitedError
from pinstack_common.failopen import FailOpen

__all__ = ["DisabledSendLimiter", "RedisSendLimiter", "SendLimiter", "redis_send_limiter"]

_NAMESPACE = "notification-send"


class SendLimiter(Protocol):
    async def hit(self, *, caller_id: int) -> None:
        """Count one send by ``caller_id``; raise :class:`RateLimitedError` when over a limit."""


class DisabledSendLimiter:
    """``PINSTACK_RATE_LIMITS_ENABLED=false``."""

    async def hit(self, *, caller_id: int) -> None:
        return None


class RedisSendLimiter:
    def __init__(
        self,
        *,
        limiter: MovingWindowRateLimiter,
        limits: Sequence[RateLimitItem],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._limits = list(limits)
        self._wall_clock = wall_clock
        self._store = FailOpen(component="notification", consequence="sends not limited")

    async def hit(self, *, caller_id: int) -> None:
        key = str(caller_id)
        with self._store.guard():
            for item in self._limits:
                if not await self._limiter.hit(item, _NAMESPACE, key):
                    stats = await self._limiter.get_window_stats(item, _NAMESPACE, key)
                    raise RateLimitedError(
                        retry_after=math.ceil(stats.reset_time - self._wall_clock())
                    )


def redis_send_limiter(*, redis_url: str, connection_pool: Any, limits: str) -> RedisSendLimiter:
    """A limiter sharing the component's Redis connection pool (closed with it)."""
    storage = RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        key_prefix="pinstack:notification:limits",
        connection_pool=connection_pool,
    )
    return RedisSendLimiter(limiter=MovingWindowRateLimiter(storage), limits=parse_many(limits))
