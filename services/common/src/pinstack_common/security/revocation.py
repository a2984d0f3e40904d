"""Ended sessions, so the edge refuses their access tokens before those expire.

Access tokens are stateless and live for minutes. When auth ends a session (logout, refresh-token
reuse) or every session of a user (password change, deletion), it records that in its own
database (the record) and copies it here, into Redis (the cache), for as long as an access token
can live. The gateway checks each bearer against Redis (one MGET).

Redis is only trusted where it can be: a hit always refuses; a miss is authoritative only while
the *warm marker* is present (auth writes it after copying every live revocation in, so a Redis
restarted empty or flushed has no marker) and this process has not lost Redis since auth last said
the copy is complete. Otherwise the check asks the *authority* (auth's ``CheckSession``, answered
from PostgreSQL). If that fails too, the check fails closed with ``UnavailableError`` (503): a
logged-out token must never pass because a dependency is down. See docs/security.md, "Session
revocation and Redis outages".
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pinstack_common.errors import UnavailableError
from pinstack_common.observability.metrics import CACHE_REQUESTS, UPSTREAM_SERVING
from pinstack_common.security.tokens import Identity

__all__ = [
    "AuthorityAnswer",
    "RevocationAuthority",
    "RevocationEntry",
    "SessionRevocations",
    "session_key",
    "user_key",
]

log = structlog.get_logger(__name__)

_PREFIX = "pinstack:revoked:"
_WARM = _PREFIX + "warm"
_UNAVAILABLE = "external service unavailable"
# Keep the larger value: a password change's ``at`` must never be overwritten by an older one
# (two changes racing, or a replay of an old record after a newer write-through).
_SET_MAX = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


def _describe(error: BaseException) -> str:
    # gRPC errors render as a multi-line block; their code and details are what matter.
    code, details = getattr(error, "code", None), getattr(error, "details", None)
    if callable(code) and callable(details):
        return f"{type(error).__name__}: {getattr(code(), 'name', code())} {details()}"
    return f"{type(error).__name__}: {error}"


def session_key(session_id: str) -> str:
    """The record key of one ended session (the access token's ``sid``)."""
    return f"session:{session_id}"


def user_key(user_id: int) -> str:
    """The record key of "every token of this user issued before <value>"."""
    return f"user:{user_id}"


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    key: str  # session_key(...) or user_key(...)
    value: int  # 1 for a session; the cut-off Unix time for a user
    ttl_seconds: float


@dataclass(frozen=True, slots=True)
class AuthorityAnswer:
    revoked: bool
    cache_current: bool  # every recorded revocation has reached Redis


RevocationAuthority = Callable[[Identity], Awaitable[AuthorityAnswer]]


class SessionRevocations:
    """The Redis side: auth writes through it, the gateway reads through it."""

    def __init__(
        self, *, redis: Redis, authority: RevocationAuthority | None = None, component: str = ""
    ) -> None:
        self._redis = redis
        self._authority = authority
        self._component = component or "gateway"
        self._redis_down = False
        self._authority_down = False
        # Set when this process lost Redis: writes made meanwhile may be missing from it until
        # auth replays them, so misses are checked with the authority until it says caught up.
        self._distrust = False

    # -- writers (auth) ------------------------------------------------------------------------

    async def store(self, entries: Sequence[RevocationEntry]) -> None:
        """Copy revocations into Redis; raises ``RedisError``/``OSError`` when it cannot."""
        if not entries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                ttl = max(1, math.ceil(entry.ttl_seconds))
                pipe.eval(_SET_MAX, 1, _PREFIX + entry.key, entry.value, ttl)
            await pipe.execute()

    async def is_warm(self) -> bool:
        return bool(await self._redis.exists(_WARM))

    async def mark_warm(self) -> None:
        """Say that Redis holds every live revocation (call only after copying them in)."""
        await self._redis.set(_WARM, b"1")

    # -- readers (gateway) ---------------------------------------------------------------------

    async def is_revoked(self, identity: Identity) -> bool:
        """Whether the token's session ended; ``UnavailableError`` if that cannot be known."""
        keys = [_PREFIX + session_key(identity.session_id), _PREFIX + user_key(identity.user_id)]
        try:
            session, user, warm = await self._redis.mget([*keys, _WARM])
        except (RedisError, OSError) as error:
            CACHE_REQUESTS.labels(self._component, "error").inc()
            self._redis_lost(error)
            return await self._ask(identity, redis_trusted=False)
        self._redis_back()
        # Strictly before: a token issued in the second of a password change may be the new one.
        if session is not None or (user is not None and identity.issued_at < int(user)):
            CACHE_REQUESTS.labels(self._component, "hit").inc()
            return True
        if warm is None or self._distrust:
            return await self._ask(identity, redis_trusted=warm is not None)
        CACHE_REQUESTS.labels(self._component, "miss").inc()
        return False

    async def redis_status(self) -> str:
        """``serving`` or ``unavailable``, for readiness; also sets the serving gauge."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as error:
            self._redis_lost(error)
            UPSTREAM_SERVING.labels("redis").set(0)
            return "unavailable"
        self._redis_back()
        UPSTREAM_SERVING.labels("redis").set(1)
        return "serving"

    async def _ask(self, identity: Identity, *, redis_trusted: bool) -> bool:
        CACHE_REQUESTS.labels(self._component, "authority").inc()
        if self._authority is None:
            raise UnavailableError(_UNAVAILABLE)
        try:
            answer = await self._authority(identity)
        except Exception as error:
            CACHE_REQUESTS.labels(self._component, "authority_error").inc()
            if not self._authority_down:
                self._authority_down = True
                log.warning(
                    "revocation check impossible: auth unreachable too; refusing bearers (503)",
                    error=_describe(error),
                )
            raise UnavailableError(_UNAVAILABLE) from error
        if self._authority_down:
            self._authority_down = False
            log.info("revocation authority reachable again")
        if redis_trusted and answer.cache_current and self._distrust:
            self._distrust = False
            log.info("revocation cache caught up; trusting it again")
        return answer.revoked

    def _redis_lost(self, error: BaseException) -> None:
        self._distrust = True
        if not self._redis_down:
            self._redis_down = True
            UPSTREAM_SERVING.labels("redis").set(0)
            log.warning(
                "revocation cache (Redis) unavailable; checking sessions with auth",
                error=_describe(error),
            )

    def _redis_back(self) -> None:
        if self._redis_down:
            self._redis_down = False
            UPSTREAM_SERVING.labels("redis").set(1)
            log.info("revocation cache (Redis) reachable again")
