"""The consumer's dedupe table (UserDeleted, UserUpdated).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from pinstack_common.events.consumer import processed_events_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The layout belongs to the platform kit; every consuming service creates the same table.
    processed_events_table(sa.MetaData()).create(op.get_bind())


def downgrade() -> None:
    op.drop_table("processed_events")
