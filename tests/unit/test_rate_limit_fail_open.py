"""Rate limits fail open when Redis is lost: counted every time, logged once per outage.

A login flood during a Redis outage used to write one warning per attempt.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from limits import parse_many
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from pinstack_auth.ratelimit import RedisLoginLimiter
from pinstack_common.observability.metrics import RATE_LIMIT_STORE_ERRORS
from pinstack_notification.ratelimit import RedisSendLimiter


class FlakyLimiter:
    """A moving-window limiter whose store is down while ``down`` is set."""

    down = True

    async def _call(self, *args: Any) -> bool:
        if self.down:
            raise RedisConnectionError("Connection refused")
        return True

    hit = test = clear = _call


def _warnings_and_infos(logs: list[MutableMapping[str, Any]]) -> tuple[int, int]:
    ours = [e for e in logs if str(e["event"]).startswith("rate-limit store")]
    return (
        sum(e["log_level"] == "warning" for e in ours),
        sum(e["log_level"] == "info" for e in ours),
    )


async def test_a_login_flood_during_an_outage_logs_once_and_counts_each() -> None:
    store = FlakyLimiter()
    limiter = RedisLoginLimiter(
        limiter=store,  # type: ignore[arg-type]
        per_account=parse_many("5/minute"),
        per_account_address=parse_many("3/minute"),
        per_address=parse_many("10/minute"),
    )
    errors = RATE_LIMIT_STORE_ERRORS.labels("auth")
    before = errors._value.get()
    with capture_logs() as logs:
        for _ in range(20):
            await limiter.check_address(address="10.0.0.1")  # fails open: no exception
            await limiter.attempt(address="10.0.0.1", account="alice")
            await limiter.failed(address="10.0.0.1")
        store.down = False
        await limiter.attempt(address="10.0.0.1", account="alice")
    assert _warnings_and_infos(logs) == (1, 1)  # lost once, back once
    assert errors._value.get() - before == 60


async def test_sends_during_an_outage_log_once() -> None:
    store = FlakyLimiter()
    limiter = RedisSendLimiter(limiter=store, limits=parse_many("30/10second"))  # type: ignore[arg-type]
    with capture_logs() as logs:
        for _ in range(10):
            await limiter.hit(caller_id=7)
    assert _warnings_and_infos(logs) == (1, 0)
