"""The consumer's dedupe table (UserDeleted)."""

from pinstack_common.migrations import create_platform_tables, drop_tables

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    create_platform_tables("processed_events")


def downgrade() -> None:
    drop_tables("processed_events")
