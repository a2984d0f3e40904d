"""Ended sessions: recorded in PostgreSQL with the session's end, copied into Redis for the edge.

PostgreSQL is the record, Redis the cache (:mod:`pinstack_common.security.revocation`):

* :class:`Revoker` records a revocation in the transaction that ends the session and writes it
  through to Redis before that transaction commits (so a logout that returned is already
  refused at the gateway). If Redis is down the row stays ``cached = false``: the logout still
  succeeds, and the row is replayed later.
* :class:`RevocationSync` (a lifecycle component, one per auth replica) replays those rows once
  Redis answers, and re-copies every live revocation, then the warm marker, whenever the marker is
  missing (Redis restarted empty, flushed, or evicted it). Until the marker is back, the gateway
  asks :meth:`Revoker.check` (``CheckSession``) instead of trusting Redis's misses.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy import Row, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_auth.models import session_revocations
from pinstack_common.db.database import Database
from pinstack_common.observability.metrics import CACHE_REQUESTS
from pinstack_common.security.revocation import (
    AuthorityAnswer,
    RevocationEntry,
    SessionRevocations,
    session_key,
    user_key,
)

__all__ = ["RevocationSync", "Revoker"]

log = structlog.get_logger(__name__)

_table = session_revocations


class Revoker:
    """Records revocations (in the caller's transaction) and answers whether one applies."""

    def __init__(
        self,
        *,
        database: Database,
        cache: SessionRevocations,
        lifetime: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = database
        self._cache = cache
        self._lifetime = lifetime  # how long an access token can live
        self._clock = clock
        self.pending = asyncio.Event()  # set when a write-through failed: wakes the sync

    async def revoke_session(self, session: AsyncSession, session_id: str) -> None:
        await self._record(session, {session_key(session_id): 1})

    async def revoke_user(
        self,
        session: AsyncSession,
        user_id: int,
        *,
        at: int,
        sessions: Sequence[uuid.UUID | str] = (),
    ) -> None:
        """Refuse the user's access tokens issued before ``at`` (a Unix time in seconds), and
        every token of ``sessions``."""
        values = {session_key(str(ended)): 1 for ended in sessions}
        values[user_key(user_id)] = at
        await self._record(session, values)

    async def _record(self, session: AsyncSession, values: dict[str, int]) -> None:
        now = self._clock()
        expires_at = now + self._lifetime
        statement = insert(_table).values(
            [
                {"key": key, "value": value, "expires_at": expires_at}
                for key, value in values.items()
            ]
        )
        stored = (
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[_table.c.key],
                    set_={
                        "value": func.greatest(_table.c.value, statement.excluded.value),
                        "expires_at": func.greatest(
                            _table.c.expires_at, statement.excluded.expires_at
                        ),
                        "cached": False,
                    },
                ).returning(_table.c.key, _table.c.value, _table.c.expires_at)
            )
        ).all()
        entries = _entries(stored, now=now)
        # Written through before the commit: once the caller hears "logged out", the edge
        # refuses the token. If the commit then fails, Redis refuses a token that still holds:
        # the safe direction, and it expires with the token.
        try:
            await self._cache.store(entries)
        except (RedisError, OSError) as error:
            CACHE_REQUESTS.labels("auth", "error").inc()
            log.warning(
                "revocation not cached; Redis unreachable, replay queued",
                keys=len(entries),
                error=f"{type(error).__name__}: {error}",
            )
            self.pending.set()
            return
        await _mark_cached(session, entries)

    async def check(self, *, session_id: str, user_id: int, issued_at: int) -> AuthorityAnswer:
        """The authoritative answer, from the record (``CheckSession``)."""
        now = self._clock()
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(_table.c.key, _table.c.value).where(
                        _table.c.key.in_([session_key(session_id), user_key(user_id)]),
                        _table.c.expires_at > now,
                    )
                )
            ).all()
            behind = await session.scalar(
                select(exists().where(~_table.c.cached, _table.c.expires_at > now))
            )
        found = {row.key: int(row.value) for row in rows}
        cut_off = found.get(user_key(user_id))
        revoked = session_key(session_id) in found or (cut_off is not None and issued_at < cut_off)
        return AuthorityAnswer(revoked=revoked, cache_current=not behind)

    async def purge(self, session: AsyncSession) -> int:
        """Drop revocations whose tokens have all expired."""
        result = await session.execute(delete(_table).where(_table.c.expires_at <= self._clock()))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def sync_once(self) -> int:
        """Bring Redis up to the record; the number of revocations copied. Raises on failure."""
        warm = await self._cache.is_warm()
        now = self._clock()
        query = select(_table.c.key, _table.c.value, _table.c.expires_at).where(
            _table.c.expires_at > now
        )
        if warm:
            query = query.where(~_table.c.cached)
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
        entries = _entries(rows, now=now)
        await self._cache.store(entries)
        if entries:
            async with self._db.transaction() as session:
                await _mark_cached(session, entries)
        if not warm:
            # Only now may the gateway trust misses again: every live revocation is in.
            await self._cache.mark_warm()
            log.info("revocation cache warmed from the database", count=len(entries))
        elif entries:
            log.info("revocations replayed into the cache", count=len(entries))
        return len(entries)


def _entries(rows: Iterable[Row[Any, Any, Any]], *, now: datetime) -> list[RevocationEntry]:
    """Stored rows (key, value, expires_at) as the cache takes them: a TTL counted from now."""
    return [
        RevocationEntry(
            key=row.key, value=int(row.value), ttl_seconds=(row.expires_at - now).total_seconds()
        )
        for row in rows
    ]


async def _mark_cached(session: AsyncSession, entries: list[RevocationEntry]) -> None:
    # Only the value that was written: a newer one recorded meanwhile stays to be replayed.
    await session.execute(
        update(_table)
        .where(_table.c.key == bindparam("k"), _table.c.value == bindparam("v"))
        .values(cached=True),
        [{"k": entry.key, "v": entry.value} for entry in entries],
    )


class RevocationSync:
    """A lifecycle component: keeps Redis caught up with the record, with backoff.

    A pass runs every ``interval`` seconds and at once when a write-through failed; a failing
    pass (Redis or the database down) is retried after a growing delay. The warning is logged
    once per outage, not once per pass.
    """

    def __init__(
        self,
        *,
        revoker: Revoker,
        interval: float = 2.0,
        max_backoff: float = 2.0,
    ) -> None:
        self.name = "auth-revocation-sync"
        self._revoker = revoker
        self._interval = interval
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failures = 0
        wake = self._revoker.pending
        while not self._stopping.is_set():
            wake.clear()  # before the pass: a failure during it wakes the next one
            try:
                await self._revoker.sync_once()
            except Exception as error:  # noqa: BLE001 - any failure: retry, never end the task
                failures += 1
                if failures == 1:
                    log.warning("revocation cache sync failing; retrying",
                                error=f"{type(error).__name__}: {error}")  # fmt: skip
                delay = min(self._max_backoff, 0.05 * 2**failures)
            else:
                if failures:
                    log.info("revocation cache sync recovered", failed_passes=failures)
                failures = 0
                delay = self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
