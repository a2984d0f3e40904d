"""Record who sent a notification (NULL for those the system produced)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # Nullable, no default: adding it is a catalogue change only, no table rewrite.
    op.add_column("notifications", sa.Column("sender_id", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "sender_id")
