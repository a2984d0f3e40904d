"""The consumer's dedupe table (UserDeleted, UserUpdated)."""

from pinstack_common.db.migrations import platform_tables_revision

revision = "0002"
down_revision = "0001"

upgrade, downgrade = platform_tables_revision("processed_events")
