"""Posts, media, tags and the outbox."""

import sqlalchemy as sa
from alembic import op

from pinstack_common.db.migrations import create_platform_tables, drop_tables

revision = "0001"
down_revision = None


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("author_id", sa.BigInteger, nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("content", sa.Text, nullable=False, server_default=""),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    op.create_index("ix_posts_created", "posts", [sa.text("created_at DESC"), sa.text("id DESC")])
    op.create_index(
        "ix_posts_author_created",
        "posts",
        ["author_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_table(
        "post_media",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "post_id",
            sa.BigInteger,
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("ordinal", sa.SmallInteger, nullable=False),
    )
    op.create_index("ix_post_media_post", "post_media", ["post_id", "position", "ordinal"])
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
    )
    op.create_table(
        "post_tags",
        sa.Column(
            "post_id",
            sa.BigInteger,
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tag_id", sa.BigInteger, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
    )
    op.create_index("ix_post_tags_tag", "post_tags", ["tag_id", "post_id"])
    create_platform_tables("outbox")


def downgrade() -> None:
    drop_tables("outbox", "post_tags", "tags", "post_media", "posts")
