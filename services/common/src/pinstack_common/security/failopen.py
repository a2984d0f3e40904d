"""Calls to a store whose loss must not stop the request: rate-limit counters in Redis.

Losing the counters fails open (a lost store must not lock every user out), but an attacker
hammering the login during a Redis outage must not also flood the logs: a failure is swallowed
and counted every time, and logged once per outage — a warning when the store is lost, an info
line when it answers again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog
from redis.exceptions import RedisError

from pinstack_common.observability.metrics import RATE_LIMIT_STORE_ERRORS

__all__ = ["FailOpen"]

log = structlog.get_logger(__name__)


class FailOpen:
    def __init__(self, *, component: str, consequence: str) -> None:
        self._errors = RATE_LIMIT_STORE_ERRORS.labels(component)
        self._consequence = consequence
        self._down = False

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block; a Redis failure inside it is counted, logged once, and swallowed."""
        try:
            yield
        except (RedisError, OSError) as error:
            self._errors.inc()
            if not self._down:
                self._down = True
                log.warning(
                    "rate-limit store unavailable", consequence=self._consequence, error=str(error)
                )
            return
        if self._down:
            self._down = False
            log.info("rate-limit store reachable again")
