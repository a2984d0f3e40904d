"""Moving-window limits counted in Redis (the ``limits`` library), for the services that limit
their callers (auth: logins; notification: sends). Each service owns its rules; the kit owns
where the counters live and how a refusal reads."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from pinstack_common.errors import RateLimitedError

__all__ = ["moving_window", "refusal"]


def moving_window(
    *, redis_url: str, connection_pool: Any, component: str
) -> MovingWindowRateLimiter:
    """Counters under ``pinstack:<component>:limits``, sharing the component's Redis connection
    pool (closed with it)."""
    storage = RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        key_prefix=f"pinstack:{component}:limits",
        connection_pool=connection_pool,
    )
    return MovingWindowRateLimiter(storage)


async def refusal(
    limiter: MovingWindowRateLimiter,
    item: RateLimitItem,
    namespace: str,
    key: str,
    *,
    wall_clock: Callable[[], float],
) -> RateLimitedError:
    """The error for a refused ``item``: retry once its window frees a slot."""
    stats = await limiter.get_window_stats(item, namespace, key)
    return RateLimitedError(retry_after=math.ceil(stats.reset_time - wall_clock()))
