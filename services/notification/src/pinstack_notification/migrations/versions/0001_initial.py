"""Notifications, the outbox, and the consumer's dedupe table."""

import sqlalchemy as sa
from alembic import op

from pinstack_common.db.migrations import create_platform_tables, drop_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("is_read", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("dedupe_key", sa.String(255), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_notifications_user_feed", "notifications", ["user_id", sa.text("id DESC")])
    op.create_index(
        "ix_notifications_user_unread",
        "notifications",
        ["user_id"],
        postgresql_where=sa.text("NOT is_read"),
    )
    op.create_index(
        "uq_notifications_dedupe_key",
        "notifications",
        ["dedupe_key"],
        unique=True,
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )
    create_platform_tables("outbox", "processed_events")


def downgrade() -> None:
    drop_tables("processed_events", "outbox", "notifications")
