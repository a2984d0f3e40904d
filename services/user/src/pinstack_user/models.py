"""The user service's tables: profiles, and the outbox of its events."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, String, Table, Text, func

from pinstack_common.events.outbox import outbox_table

__all__ = ["metadata", "outbox", "users"]

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False),  # as typed (NFC): what answers show
    # pinstack_common.usernames.canonical_username(username), computed in Python on every write:
    # the key uniqueness and lookups compare (PostgreSQL's lower() folds differently).
    Column("username_canonical", Text, nullable=False),
    Column("email", String(320), nullable=False),
    Column("full_name", String(255), nullable=False, server_default=""),
    Column("bio", Text, nullable=False, server_default=""),
    Column("avatar_url", String(2048), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

Index("uq_users_username_canonical", users.c.username_canonical, unique=True)
Index("uq_users_email_lower", func.lower(users.c.email), unique=True)

outbox = outbox_table(metadata)
