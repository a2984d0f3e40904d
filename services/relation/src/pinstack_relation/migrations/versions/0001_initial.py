"""Follows and the outbox."""

import sqlalchemy as sa
from alembic import op

from pinstack_common.db.migrations import create_platform_tables, drop_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.BigInteger, primary_key=True),
        sa.Column("followee_id", sa.BigInteger, primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("follower_id <> followee_id", name="ck_follows_not_self"),
    )
    op.create_index("ix_follows_followee", "follows", ["followee_id", "created_at"])
    create_platform_tables("outbox")


def downgrade() -> None:
    drop_tables("outbox", "follows")
