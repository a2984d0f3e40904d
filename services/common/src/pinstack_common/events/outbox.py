"""The transactional outbox: an event is written in the same transaction as the change it announces.

Every producing service adds :func:`outbox_table` to its metadata (and to its first migration);
use cases call :meth:`Outbox.add` inside their unit of work. A relay publishes the rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message
from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, MetaData, String, Table, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Outbox", "outbox_table"]


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("event_type", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )


class Outbox:
    """Writes events into one service's outbox table."""

    def __init__(self, *, table: Table) -> None:
        self._table = table

    async def add(
        self, session: AsyncSession, *, topic: str, key: str, message: Message
    ) -> uuid.UUID:
        event_id = uuid.uuid4()
        await session.execute(
            self._table.insert().values(
                id=event_id,
                topic=topic,
                key=key,
                event_type=message.DESCRIPTOR.full_name,
                payload=message.SerializeToString(),
                headers={},
                created_at=datetime.now(UTC),
            )
        )
        return event_id
