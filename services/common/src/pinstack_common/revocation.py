"""Ended sessions, so the edge refuses their access tokens before those expire.

Access tokens are stateless and live for minutes. When auth ends a session (logout, refresh-token
reuse) or every session of a user (password change, deletion), it records that here, in Redis,
for as long as an access token can live; the gateway checks each bearer against it (one MGET).
If Redis is unreachable the check fails open with a warning and a counter: availability of the
API wins over the few minutes of token lifetime that the signature check still bounds.
"""

from __future__ import annotations

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pinstack_common.metrics import CACHE_REQUESTS
from pinstack_common.tokens import Identity

__all__ = ["SessionRevocations"]

log = structlog.get_logger(__name__)

_SESSION = "pinstack:revoked:session:"
_USER = "pinstack:revoked:user:"


class SessionRevocations:
    def __init__(self, *, redis: Redis, ttl_seconds: int = 900) -> None:
        # ttl_seconds: how long an access token can live; only writers (auth) need it right.
        self._redis = redis
        self._ttl = max(1, ttl_seconds)

    async def revoke_session(self, session_id: str) -> None:
        await self._record(_SESSION + session_id, b"1")

    async def revoke_user(self, user_id: int, *, at: int) -> None:
        """Refuse the user's access tokens issued before ``at`` (a Unix time in seconds)."""
        await self._record(_USER + str(user_id), str(at).encode())

    async def _record(self, key: str, value: bytes) -> None:
        # The session already ended in the database; failing here would only hide that.
        try:
            await self._redis.set(key, value, ex=self._ttl)
        except (RedisError, OSError) as error:
            log.warning("could not record a revocation", error=str(error))

    async def is_revoked(self, identity: Identity) -> bool:
        try:
            session, user = await self._redis.mget(
                [_SESSION + identity.session_id, _USER + str(identity.user_id)]
            )
        except (RedisError, OSError) as error:
            CACHE_REQUESTS.labels("gateway", "error").inc()
            log.warning("revocation list unavailable; accepting the token", error=str(error))
            return False
        # Strictly before: a token issued in the second of a password change may be the new one.
        return session is not None or (user is not None and identity.issued_at < int(user))
