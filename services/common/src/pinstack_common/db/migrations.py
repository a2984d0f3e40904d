"""Alembic, driven from code: each service keeps its scripts in ``<package>/migrations``.

``pinstack migrate`` and ``pinstack up`` call :func:`upgrade` / :func:`downgrade`; each service's
``migrations/env.py`` is two lines that call :func:`run_env` with its metadata.

Rollbacks. An image knows only the revisions it ships, so after ``helm rollback`` to an older
image the database's revision (written by the newer one) is unknown to it. Every upgrade or
downgrade therefore also records, in the same transaction, the lineage of the revision it left
the database at (that revision and all its ancestors) in :data:`LINEAGE_TABLE`. With it an older
image can tell "ahead of me" (its head is in the lineage: a newer release's schema, compatible
for one release by the expand/contract rule) from "unrelated" (it is not), see
:func:`schema_status`; :func:`upgrade` to head is a no-op when the schema is ahead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection

from pinstack_common.db.engine import create_engine
from pinstack_common.events.consumer import processed_events_table
from pinstack_common.events.outbox import outbox_table

__all__ = [
    "LINEAGE_TABLE",
    "SchemaMismatchError",
    "SchemaState",
    "SchemaStatus",
    "create_platform_tables",
    "current_revision",
    "downgrade",
    "drop_tables",
    "head_revision",
    "platform_tables_revision",
    "run_env",
    "schema_status",
    "upgrade",
]

LINEAGE_TABLE = "pinstack_schema_lineage"
"""Per service database: every revision the current schema descends from (itself included)."""

_lineage = sa.Table(
    LINEAGE_TABLE,
    sa.MetaData(),
    sa.Column("revision", sa.String(64), primary_key=True),
    sa.Column(
        "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# Tables whose layout belongs to the platform kit: every service that has one creates it alike.
_PLATFORM_TABLES: dict[str, Callable[[MetaData], sa.Table]] = {
    "outbox": outbox_table,
    "processed_events": processed_events_table,
}


def create_platform_tables(*names: str) -> None:
    """In a revision's ``upgrade``: create the kit's ``outbox`` / ``processed_events`` tables."""
    metadata = MetaData()
    for name in names:
        _PLATFORM_TABLES[name](metadata).create(op.get_bind())


def drop_tables(*names: str) -> None:
    """In a revision's ``downgrade``: drop ``names`` in the order given."""
    for name in names:
        op.drop_table(name)


def platform_tables_revision(*names: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """``upgrade`` and ``downgrade`` of a revision that only adds kit tables (e.g. a service
    that starts consuming events adds ``processed_events``)."""

    def upgrade() -> None:
        create_platform_tables(*names)

    def downgrade() -> None:
        drop_tables(*reversed(names))

    return upgrade, downgrade


# config.attributes keys: set by upgrade() for run_env, which reports the status back.
_GUARD = "pinstack.upgrade_to_head"
_STATUS = "pinstack.status"


class SchemaState(StrEnum):
    AT_HEAD = "at-head"
    AHEAD = "ahead"  # descends from this image's head: a newer release migrated it
    BEHIND = "behind"  # an ancestor of this image's head, or nothing migrated yet
    DIVERGED = "diverged"  # on a branch this image's head is not part of
    UNKNOWN = "unknown"  # a revision this image does not ship, and no lineage to judge it by


class SchemaMismatchError(RuntimeError):
    """The database's schema is on a lineage this image cannot migrate."""


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    state: SchemaState
    current: tuple[str, ...]
    head: str | None

    @property
    def compatible(self) -> bool:
        """This image may serve the schema: at its head, or a newer release's descendant of it."""
        return self.state in (SchemaState.AT_HEAD, SchemaState.AHEAD)

    @property
    def message(self) -> str:
        at = ", ".join(self.current) or "no revision"
        return {
            SchemaState.AT_HEAD: f"schema at this image's head {self.head}",
            SchemaState.AHEAD: (
                f"schema at {at}, a newer release's descendant of this image's head {self.head}"
            ),
            SchemaState.BEHIND: f"schema at {at}, behind this image's head {self.head}",
            SchemaState.DIVERGED: (
                f"schema at {at}, on a lineage without this image's head {self.head}"
            ),
            SchemaState.UNKNOWN: (
                f"schema at {at}, a revision this image does not ship, and no recorded lineage "
                f"shows whether it descends from this image's head {self.head}"
            ),
        }[self.state]


def _config(package: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(*, package: str, url: str, revision: str = "head") -> SchemaStatus | None:
    """Upgrade; to ``head`` this returns the status found first and skips a schema ahead of it.

    Raises :class:`SchemaMismatchError` (to ``head``), changing nothing, for a revision this image
    does not ship unless the recorded lineage shows it descends from this image's head.
    """
    config = _config(package, url)
    config.attributes[_GUARD] = revision == "head"
    command.upgrade(config, revision)
    status: SchemaStatus | None = config.attributes.get(_STATUS)
    return status


def downgrade(*, package: str, url: str, revision: str = "-1") -> None:
    command.downgrade(_config(package, url), revision)


def head_revision(*, package: str) -> str | None:
    return _scripts(package).get_current_head()


async def current_revision(*, url: str) -> str | None:
    """The revision a database is at (None before the first migration)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def schema_status(*, package: str, url: str) -> SchemaStatus:
    """Where the database's schema stands relative to the head ``package`` ships."""
    scripts = _scripts(package)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: _status(sync, scripts))
    finally:
        await engine.dispose()


def _scripts(package: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(_config(package, "postgresql://unused"))


def _down_revisions(scripts: ScriptDirectory, revision: str) -> tuple[str, ...]:
    down = scripts.get_revision(revision).down_revision
    return () if down is None else (down,) if isinstance(down, str) else tuple(down)


def _ancestry(scripts: ScriptDirectory, revisions: Iterable[str]) -> set[str]:
    """The revisions given and every revision they depend on, as the scripts declare them."""
    seen: set[str] = set()
    pending = list(revisions)
    while pending:
        revision = pending.pop()
        if revision not in seen:
            seen.add(revision)
            pending.extend(_down_revisions(scripts, revision))
    return seen


def _recorded_lineage(connection: Connection) -> set[str]:
    if not sa.inspect(connection).has_table(LINEAGE_TABLE):
        return set()
    return set(connection.execute(sa.select(_lineage.c.revision)).scalars())


def _status(connection: Connection, scripts: ScriptDirectory) -> SchemaStatus:
    head = scripts.get_current_head()
    current = MigrationContext.configure(connection).get_current_heads()
    state = _state(connection, scripts, head=head, current=current)
    return SchemaStatus(state=state, current=current, head=head)


def _state(
    connection: Connection, scripts: ScriptDirectory, *, head: str | None, current: tuple[str, ...]
) -> SchemaState:
    if head is None or current == (head,):  # an image without migrations accepts any schema
        return SchemaState.AT_HEAD
    if not current:
        return SchemaState.BEHIND
    if set(current) <= {script.revision for script in scripts.walk_revisions()}:
        if head in _ancestry(scripts, current):
            return SchemaState.AHEAD
        in_line = set(current) <= _ancestry(scripts, [head])
        return SchemaState.BEHIND if in_line else SchemaState.DIVERGED
    # A revision this image does not ship: trust the lineage the migrating image recorded, but
    # only if it describes the database's current revision (it is rewritten with every move).
    lineage = _recorded_lineage(connection)
    if not set(current) <= lineage:
        return SchemaState.UNKNOWN
    return SchemaState.AHEAD if head in lineage else SchemaState.DIVERGED


def _record_lineage(connection: Connection, scripts: ScriptDirectory) -> None:
    """Make :data:`LINEAGE_TABLE` hold exactly the ancestry of the database's revision."""
    wanted = _ancestry(scripts, MigrationContext.configure(connection).get_current_heads())
    if not wanted:  # back at base: leave nothing behind
        _lineage.drop(connection, checkfirst=True)
        return
    _lineage.create(connection, checkfirst=True)
    connection.execute(sa.delete(_lineage).where(_lineage.c.revision.not_in(wanted)))
    missing = wanted - _recorded_lineage(connection)
    if missing:
        connection.execute(sa.insert(_lineage), [{"revision": r} for r in sorted(missing)])


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    return not (type_ == "table" and name == LINEAGE_TABLE)  # ours, not the service's model


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py`` (online mode, async driver)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    attributes = context.config.attributes
    scripts = context.script

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            include_name=_include_name,
        )
        with context.begin_transaction():
            if attributes.get(_GUARD):
                status = attributes[_STATUS] = _status(connection, scripts)
                if status.state is SchemaState.AHEAD:
                    return  # a newer release migrated it; rolling back the image changes nothing
                if status.state in (SchemaState.UNKNOWN, SchemaState.DIVERGED):
                    # Alembic would only say "Can't locate revision"; this image cannot move it.
                    raise SchemaMismatchError(status.message)
            context.run_migrations()
            _record_lineage(connection, scripts)

    async def run() -> None:
        engine = create_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    _run(run)


def _run(factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Alembic's command API is sync; when called from a running loop, run in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(factory())
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(factory())
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
