"""Record who sent a notification (NULL for those the system produced).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it is a catalogue change only, no table rewrite.
    op.add_column("notifications", sa.Column("sender_id", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "sender_id")
