"""Per-caller limits on ``send`` (moving window, counters in Redis through ``limits``).

Redis trouble fails open, counted and logged once per outage
(``pinstack_common.security.failopen``): losing the counter store must not stop notifications.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter

from pinstack_common.security.failopen import FailOpen
from pinstack_common.security.ratelimit import refusal

__all__ = ["DisabledSendLimiter", "RedisSendLimiter", "SendLimiter", "send_limiter"]

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
                    raise await refusal(
                        self._limiter, item, _NAMESPACE, key, wall_clock=self._wall_clock
                    )


def send_limiter(windows: MovingWindowRateLimiter | None, *, limits: str) -> SendLimiter:
    """The limiter over ``windows`` (the runtime's; None when rate limits are off)."""
    if windows is None:
        return DisabledSendLimiter()
    return RedisSendLimiter(limiter=windows, limits=parse_many(limits))
