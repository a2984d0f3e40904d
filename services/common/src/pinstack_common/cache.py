"""Redis, as an optional cache and as storage for rate-limit counters.

The cache is never required for correctness: :class:`Cache` swallows Redis failures, counts
them and logs a warning, so reads fall back to the database.
"""

from __future__ import annotations

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pinstack_common.observability.metrics import CACHE_REQUESTS

__all__ = ["Cache", "open_redis"]

log = structlog.get_logger(__name__)


def open_redis(url: str) -> Redis:
    return Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
    )


class Cache:
    """Cache-aside get/set/delete on bytes with a key prefix and a TTL."""

    def __init__(self, *, redis: Redis, component: str, ttl_seconds: int = 300) -> None:
        self._redis = redis
        self._component = component
        self._ttl = ttl_seconds
        self._prefix = f"pinstack:{component}:"

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            raw = await self._redis.mget([self._prefix + k for k in keys])
            values = [v if isinstance(v, bytes) or v is None else v.encode() for v in raw]
        except (RedisError, OSError) as error:
            self._failed("get", error)
            return [None] * len(keys)
        for value in values:
            CACHE_REQUESTS.labels(self._component, "miss" if value is None else "hit").inc()
        return values

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    async def set_many(self, items: dict[str, bytes]) -> None:
        if not items:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self._prefix + key, value, ex=self._ttl)
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._failed("set", error)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._redis.delete(*(self._prefix + k for k in keys))
        except (RedisError, OSError) as error:
            self._failed("delete", error)

    def _failed(self, operation: str, error: Exception) -> None:
        CACHE_REQUESTS.labels(self._component, "error").inc()
        log.warning("cache unavailable", operation=operation, error=str(error))
