"""The outbox relay: publishes a service's committed events right after commit.

The common path: :meth:`Outbox.add` hooks the session's commit, the commit calls
:meth:`OutboxRelay.notify`, and the relay's task wakes and publishes at once. A periodic sweep
(``sweep_interval``) is only the safety net for commits it could not hear of: another replica's
writes, a process that died between commit and publish, a broker that was down.

One pass, in one transaction of the service's own database:

1. lock up to ``batch_size`` unpublished rows, oldest first, ``FOR UPDATE SKIP LOCKED``, so
   several replicas share the work instead of waiting for each other;
2. keep, per key, only the prefix of rows with no older unpublished row of that key before it
   (another replica may hold an older one locked): per-key order survives several relays;
3. publish them and wait for the broker's acknowledgement;
4. mark them published and commit.

If the process dies between 3 and 4, the rows are published again later: delivery is
at-least-once and consumers deduplicate on the event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_common.db.database import Database
from pinstack_common.events.envelope import Envelope
from pinstack_common.events.outbox import Outbox
from pinstack_common.events.transport import EventTransport
from pinstack_common.observability.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
)

__all__ = ["OutboxRelay"]

log = structlog.get_logger(__name__)


@dataclass(kw_only=True, eq=False)
class OutboxRelay:
    """A lifecycle component: ``start()`` runs the publishing task, ``stop()`` drains it."""

    database: Database
    outbox: Outbox
    transport: EventTransport
    component: str
    batch_size: int = 200
    sweep_interval: float = 5.0
    max_backoff: float = 5.0
    stop_grace: float = 10.0
    name: str = field(init=False)
    _reported_at: float = field(default=-1e9, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _stop_requested: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.name = f"{self.component}-outbox-relay"
        self.outbox.on_commit(self.notify)

    def notify(self) -> None:
        """Wake the relay: a transaction with events has committed."""
        self._wakeup.set()

    async def start(self) -> None:
        self._stop_requested.clear()
        self._wakeup.set()  # publish whatever an earlier run left behind
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop_requested.set()
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        # The pass in flight normally completes (publish + mark), so a shutdown publishes
        # nothing twice. During a broker outage it could wait for a delivery timeout: past the
        # grace period it is cancelled, its transaction rolls back and its rows stay unpublished
        # for the next run (consumers dedupe whatever did get out).
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failures = 0
        while not self._stop_requested.is_set():
            # A timeout is the periodic sweep; a wakeup is a commit (or stop()).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.sweep_interval)
            self._wakeup.clear()
            if self._stop_requested.is_set():
                break
            try:
                await self.drain()
                failures = 0
            except Exception:
                failures += 1
                delay = min(self.max_backoff, 0.1 * 2**failures)
                log.warning("outbox relay pass failed; retrying", delay=delay, exc_info=True)
                await asyncio.sleep(delay)
                self._wakeup.set()

    async def drain(self) -> int:
        """Publish until nothing publishable is left; return how many were published."""
        total = 0
        while True:
            published, more = await self.publish_batch()
            total += published
            if not more:
                break
        # The gauges need no per-commit precision; one count query a second is plenty.
        now = time.monotonic()
        if now - self._reported_at >= 1.0:
            self._reported_at = now
            await self.report_backlog()
        return total

    async def publish_batch(self) -> tuple[int, bool]:
        """One pass; return (published, whether a full batch was locked)."""
        table = self.outbox.table
        async with self.database.transaction() as session:
            rows = (
                await session.execute(
                    select(table)
                    .where(table.c.published_at.is_(None))
                    .order_by(table.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0, False
            # Every unpublished row of these keys, locked or not (plain reads never block).
            keys = {row.key for row in rows}
            pending: dict[str, list[int]] = defaultdict(list)
            for key, seq in (
                await session.execute(
                    select(table.c.key, table.c.seq)
                    .where(table.c.published_at.is_(None), table.c.key.in_(keys))
                    .order_by(table.c.seq)
                )
            ).all():
                pending[key].append(seq)
            ready = _in_order_prefix(rows, pending)
            if ready:
                await self.transport.publish([_envelope(row).to_record() for row in ready])
                await self._mark_published(session, [row.id for row in ready])
                for row in ready:
                    EVENTS_PUBLISHED.labels(self.component, row.topic).inc()
            return len(ready), len(rows) == self.batch_size and bool(ready)

    async def _mark_published(self, session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
        await session.execute(
            update(self.outbox.table)
            .where(self.outbox.table.c.id.in_(ids))
            .values(published_at=datetime.now(UTC))
        )

    async def report_backlog(self) -> None:
        table = self.outbox.table
        async with self.database.read() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(table.c.created_at)).where(
                        table.c.published_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_BACKLOG.labels(self.component).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        OUTBOX_OLDEST_AGE.labels(self.component).set(max(0.0, age))


def _in_order_prefix(rows: Sequence[Any], pending: dict[str, list[int]]) -> list[Any]:
    """The rows none of whose older unpublished rows of the same key is missing from ``rows``.

    A missing one is locked by another relay (or was written after our select): publishing past
    it would reorder that key, so the key waits for the next pass.
    """
    ours = {row.seq for row in rows}
    first_foreign: dict[str, int] = {}
    for key, seqs in pending.items():
        foreign = next((seq for seq in seqs if seq not in ours), None)
        if foreign is not None:
            first_foreign[key] = foreign
    return [row for row in rows if row.seq < first_foreign.get(row.key, row.seq + 1)]


def _envelope(row: Any) -> Envelope:
    return Envelope(
        event_id=row.id,
        topic=row.topic,
        key=row.key,
        event_type=row.event_type,
        payload=row.payload,
        context=dict(row.headers or {}),
    )
