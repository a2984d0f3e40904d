"""Usernames are unique by their canonical form (NFKC_Casefold), computed in Python.

Revision ID: 0002
Revises: 0001

``lower(username)`` folded differently from Python (``İqX`` and ``i̇qX`` were two accounts that
each found the other). Upgrade adds ``username_canonical``, fills it in Python with
``pinstack_common.usernames.canonical_username`` and moves the unique index onto it.

Rows whose canonical forms collide (registered under the old index) are resolved
deterministically: the account with the lowest id keeps the key; every later one gets the key
``<canonical>@<id>``. No username's canonical form contains ``@``, so that key never matches a
lookup or a new registration: those accounts keep their id, email, sessions and displayed name,
log in by email, and can choose a new username. Their ids are logged.

An older image (after ``helm rollback``) inserts rows without the column; a trigger fills it for
them with PostgreSQL's approximation, which equals Python's key for ASCII names (expand then
contract: a later migration drops it once no supported image predates this one). A rename made
by such an image keeps the old key until the name is changed again by this one.

Downgrade restores the index on ``lower(username)``; it refuses, changing nothing, while two
rows collide under ``lower()`` (possible for names PostgreSQL folds together and Python does
not, e.g. ``İqX`` and ``iqX``): rename one of them first.
"""

import logging

import sqlalchemy as sa
from alembic import op

from pinstack_common.usernames import canonical_username

revision = "0002"
down_revision = "0001"

log = logging.getLogger(__name__)

_BATCH = 1000

_LEGACY_DEFAULT = (
    """
    CREATE FUNCTION users_username_canonical_default() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.username_canonical := lower(normalize(NEW.username, NFKC));
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER users_username_canonical_default BEFORE INSERT ON users
        FOR EACH ROW WHEN (NEW.username_canonical IS NULL)
        EXECUTE FUNCTION users_username_canonical_default()
    """,
)


def _backfill(bind: sa.Connection) -> None:
    """Python's key for every row, in id order, a batch at a time."""
    last = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT id, username FROM users WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE users SET username_canonical = :key WHERE id = :id"),
            [{"id": row.id, "key": canonical_username(row.username)} for row in rows],
        )
        last = rows[-1].id


def _separate_collisions(bind: sa.Connection) -> None:
    """Lowest id keeps a shared key, later rows get ``<key>@<id>``; repeated until unique (a
    legacy key could itself contain ``@``, from a fullwidth ``@``, U+FF20)."""
    while True:
        moved = bind.execute(
            sa.text(
                """
                UPDATE users SET username_canonical = users.username_canonical || '@' || users.id
                FROM (
                    SELECT id, row_number() OVER (
                        PARTITION BY username_canonical ORDER BY id
                    ) AS rank
                    FROM users
                ) AS ranked
                WHERE ranked.id = users.id AND ranked.rank > 1
                RETURNING users.id, users.username
                """
            )
        ).all()
        if not moved:
            return
        for row in moved:
            log.warning(
                "username %r (user %d) collides with an older account's canonical form: "
                "it no longer finds this account; the user logs in by email",
                row.username,
                row.id,
            )


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("users", sa.Column("username_canonical", sa.Text, nullable=True))
    _backfill(bind)
    _separate_collisions(bind)
    op.alter_column("users", "username_canonical", nullable=False)
    op.create_index("uq_users_username_canonical", "users", ["username_canonical"], unique=True)
    op.drop_index("uq_users_username_lower", table_name="users")
    for statement in _LEGACY_DEFAULT:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    colliding = bind.execute(
        sa.text(
            "SELECT lower(username) AS folded, array_agg(id ORDER BY id) AS ids FROM users "
            "GROUP BY lower(username) HAVING count(*) > 1 ORDER BY min(id)"
        )
    ).all()
    if colliding:
        listed = "; ".join(f"{row.folded!r}: users {row.ids}" for row in colliding)
        raise RuntimeError(
            "cannot restore the unique index on lower(username): these accounts collide under "
            f"it, rename all but one of each first: {listed}"
        )
    op.execute("DROP TRIGGER users_username_canonical_default ON users")
    op.execute("DROP FUNCTION users_username_canonical_default()")
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.drop_index("uq_users_username_canonical", table_name="users")
    op.drop_column("users", "username_canonical")
