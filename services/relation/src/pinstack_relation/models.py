"""The relation service's tables: follows, and the outbox of its events."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, MetaData, Table, func

from pinstack_common.events.consumer import processed_events_table
from pinstack_common.events.outbox import outbox_table

__all__ = ["follows", "metadata", "outbox", "processed_events"]

metadata = MetaData()

follows = Table(
    "follows",
    metadata,
    Column("follower_id", BigInteger, primary_key=True),
    Column("followee_id", BigInteger, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("follower_id <> followee_id", name="ck_follows_not_self"),
)

# The primary key serves "whom does X follow"; this one serves "who follows X".
Index("ix_follows_followee", follows.c.followee_id, follows.c.created_at)

outbox = outbox_table(metadata)
# Ids of consumed events (UserDeleted), so a redelivered event has its effect once.
processed_events = processed_events_table(metadata)
