"""The auth service's tables: credentials, sessions (refresh-token families), revocations, keys.

Nothing here is ever sent over the wire: password hashes and token hashes stay in this database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from pinstack_common.events.consumer import processed_events_table

__all__ = [
    "credentials",
    "metadata",
    "processed_events",
    "refresh_families",
    "refresh_tokens",
    "session_revocations",
    "signing_keys",
]

metadata = MetaData()

# Keyed by the user service's id; the profile itself lives there.
credentials = Table(
    "credentials",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A family is one session: the chain of refresh tokens rotated from one login. Revoking it
# ends the session; reuse of a rotated token revokes it.
refresh_families = Table(
    "refresh_families",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_refresh_families_user_id", "user_id"),
)

# Only the SHA-256 of a token is stored: a leaked table does not yield usable tokens.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "family_id",
        UUID(as_uuid=True),
        ForeignKey("refresh_families.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
)

# Ended sessions whose access tokens may still be alive: the record the gateway's Redis copy is
# made from (``pinstack_auth.revocations``). ``key`` is ``session:<sid>`` (value 1) or
# ``user:<id>`` (value: tokens issued before this Unix time are refused). ``cached`` is false
# until the row reached Redis: a write-through that failed is replayed from here.
session_revocations = Table(
    "session_revocations",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("cached", Boolean, nullable=False, server_default="false"),
    Index("ix_session_revocations_uncached", "key", postgresql_where=text("NOT cached")),
)

# Used only when no key file is configured (embedded mode, tests): the key must survive
# restarts so that issued tokens stay valid.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key_pem", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("retired_at", DateTime(timezone=True), nullable=True),
)

# Dedupe of consumed events (user deletion): the platform kit owns its layout.
processed_events = processed_events_table(metadata)
