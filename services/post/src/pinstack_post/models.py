"""The post service's tables: posts, their media and tags, and the outbox of its events.

Authors live in the user service; ``author_id`` is a reference by id, never a foreign key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)

from pinstack_common.events.consumer import processed_events_table
from pinstack_common.events.outbox import outbox_table

__all__ = ["media", "metadata", "outbox", "post_tags", "posts", "processed_events", "tags"]

metadata = MetaData()

posts = Table(
    "posts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("author_id", BigInteger, nullable=False),
    Column("title", String(255), nullable=False),
    Column("content", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
# The list sorts newest first (id breaks ties) and filters by author and/or a time range: the
# first index serves the unfiltered and time-range lists, the second the per-author ones.
Index("ix_posts_created", posts.c.created_at.desc(), posts.c.id.desc())
Index("ix_posts_author_created", posts.c.author_id, posts.c.created_at.desc(), posts.c.id.desc())

media = Table(
    "post_media",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("post_id", BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(512), nullable=False),
    Column("type", String(8), nullable=False),
    Column("position", SmallInteger, nullable=False),
    # The order the client gave, which breaks ties between equal positions.
    Column("ordinal", SmallInteger, nullable=False),
)
Index("ix_post_media_post", media.c.post_id, media.c.position, media.c.ordinal)

# One row per tag regardless of case: ``name`` is the lower-cased key the filter matches on.
tags = Table(
    "tags",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", String(50), nullable=False, unique=True),
)

post_tags = Table(
    "post_tags",
    metadata,
    Column("post_id", BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", BigInteger, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    # The spelling this post gave the tag (kept as given; matching ignores case).
    Column("name", String(50), nullable=False),
    Column("ordinal", Integer, nullable=False),
)
# The tag filter goes from a tag to its posts.
Index("ix_post_tags_tag", post_tags.c.tag_id, post_tags.c.post_id)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
