"""Session revocations: the durable record behind the gateway's Redis revocation cache."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "session_revocations",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # Only rows still waiting for Redis: small, read by every replay pass.
    op.create_index(
        "ix_session_revocations_uncached",
        "session_revocations",
        ["key"],
        postgresql_where=sa.text("NOT cached"),
    )


def downgrade() -> None:
    op.drop_table("session_revocations")
