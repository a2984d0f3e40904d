"""The notification service's tables: notifications, and the outbox of its events."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)

from pinstack_common.events.consumer import processed_events_table
from pinstack_common.events.outbox import outbox_table

__all__ = ["metadata", "notifications", "outbox", "processed_events"]

metadata = MetaData()

notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("is_read", Boolean, nullable=False, server_default=text("false")),
    # The JSON value as the sender wrote it (any JSON value); NULL when there is none.
    Column("payload", Text, nullable=True),
    # Set for notifications made from events: a redelivered event must not notify twice.
    Column("dedupe_key", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Who sent it through ``send`` (shown to the recipient); NULL when the system produced it.
    Column("sender_id", BigInteger, nullable=True),
)

Index("ix_notifications_user_feed", notifications.c.user_id, notifications.c.id.desc())
Index(
    "ix_notifications_user_unread",
    notifications.c.user_id,
    postgresql_where=text("NOT is_read"),
)
Index(
    "uq_notifications_dedupe_key",
    notifications.c.dedupe_key,
    unique=True,
    postgresql_where=text("dedupe_key IS NOT NULL"),
)

outbox = outbox_table(metadata)
# Ids of consumed events (FollowCreated, UserDeleted), so redelivery has its effect once.
processed_events = processed_events_table(metadata)
