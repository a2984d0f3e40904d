"""The transactional outbox: an event is written in the same transaction as the change it announces.

Every producing service adds :func:`outbox_table` to its metadata (and to its first migration);
use cases call :meth:`Outbox.add` inside their unit of work. An :class:`~.relay.OutboxRelay`
publishes the rows: it subscribes to :meth:`Outbox.on_commit`, so a committed event is on its
way at once, without the use case knowing a relay exists and without waiting for a sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_common.events.envelope import capture_context

__all__ = ["Outbox", "outbox_table"]


def outbox_table(metadata: MetaData) -> Table:
    """The outbox layout shared by every producing service.

    ``seq`` is the publication order: per key it is the order of the writes (writers of one
    aggregate serialise on its row lock), which is what consumers rely on.
    """
    return Table(
        "outbox",
        metadata,
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("event_type", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        # W3C trace context and request id of the request that caused the event.
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )


class Outbox:
    """Writes events into one service's outbox table and announces commits that carried some."""

    def __init__(self, *, table: Table) -> None:
        self.table = table
        self._callbacks: list[Callable[[], None]] = []
        self._hook_key = f"pinstack_outbox_hook_{id(self)}"

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the event loop, synchronously) after each commit with events."""
        self._callbacks.append(callback)

    async def add(
        self, session: AsyncSession, *, topic: str, key: str, message: Message
    ) -> uuid.UUID:
        """Add ``message`` to the caller's transaction; return its event id."""
        event_id = uuid.uuid4()
        await session.execute(
            self.table.insert().values(
                id=event_id,
                topic=topic,
                key=key,
                event_type=message.DESCRIPTOR.full_name,
                payload=message.SerializeToString(),
                headers=capture_context(),
                created_at=datetime.now(UTC),
            )
        )
        self._hook(session)
        return event_id

    def _hook(self, session: AsyncSession) -> None:
        # One listener per session and outbox: SQLAlchemy fires after_commit only for a real
        # COMMIT of the outermost transaction (not a savepoint), which is exactly when the rows
        # become visible to the relay. A rolled-back session at worst causes one idle relay pass.
        sync_session = session.sync_session
        if sync_session.info.get(self._hook_key):
            return
        sync_session.info[self._hook_key] = True
        event.listen(sync_session, "after_commit", self._committed)

    def _committed(self, _session: Any) -> None:
        for callback in self._callbacks:
            callback()
