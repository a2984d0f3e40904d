"""Every service's Alembic history goes down to nothing and up to head again, on real PostgreSQL;
an image accepts (and leaves alone) a newer release's schema after a rollback, not an unrelated one.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

from pinstack_cli.components import SERVICES, ServiceSpec
from pinstack_common.db import migrations
from pinstack_devinfra.postgres import PostgresServer
from tests.conftest import new_database


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrations_go_down_and_up_again(
    postgres_server: PostgresServer, service: str
) -> None:
    package = SERVICES[service].package
    url = new_database(postgres_server, f"{service}_mig")
    migrations.upgrade(package=package, url=url)
    migrations.downgrade(package=package, url=url, revision="base")
    assert await migrations.current_revision(url=url) is None
    migrations.upgrade(package=package, url=url)
    assert await migrations.current_revision(url=url) == migrations.head_revision(package=package)


# ---------------------------------------------------------------- rollbacks between images
#
# Images are simulated by packages whose migrations/ is a copy of pinstack_post's: "newer" adds
# a revision 0003 (the release after this one), "older" lacks 0002 (the release before), "other"
# adds a different 0003 (a branch that never shipped with 0003).

_PROBE_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("{table}")
"""


@dataclass(frozen=True)
class Images:
    current: str  # pinstack_post itself, head 0002
    newer: str
    older: str
    other: str


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    import pinstack_post

    root = tmp_path_factory.mktemp("images")
    source = Path(pinstack_post.__file__).parent / "migrations"
    suffix = uuid.uuid4().hex[:8]

    def image(kind: str) -> tuple[str, Path]:
        name = f"{kind}_post_{suffix}"
        (root / name).mkdir()
        (root / name / "__init__.py").write_text("")
        shutil.copytree(
            source, root / name / "migrations", ignore=shutil.ignore_patterns("__pycache__")
        )
        return name, root / name / "migrations" / "versions"

    newer, versions = image("newer")
    (versions / "0003_probe.py").write_text(
        _PROBE_REVISION.format(revision="0003", table="rollback_probe")
    )
    older, versions = image("older")
    (versions / "0002_processed_events.py").unlink()
    other, versions = image("other")
    (versions / "0003b_other.py").write_text(
        _PROBE_REVISION.format(revision="0003b", table="other_probe")
    )
    sys.path.insert(0, str(root))
    try:
        yield Images(current="pinstack_post", newer=newer, older=older, other=other)
    finally:
        sys.path.remove(str(root))


async def _lineage(url: str) -> set[str] | None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            exists = await connection.run_sync(
                lambda sync: sa.inspect(sync).has_table(migrations.LINEAGE_TABLE)
            )
            if not exists:
                return None
            rows = await connection.execute(
                sa.text(f"SELECT revision FROM {migrations.LINEAGE_TABLE}")  # noqa: S608 - a module constant, no input
            )
            return set(rows.scalars())
    finally:
        await engine.dispose()


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


def _cli(monkeypatch: pytest.MonkeyPatch, package: str, url: str, *command: str) -> Result:
    """``pinstack migrate <command> --service post`` as run by the image shipping ``package``."""
    from pinstack_cli.main import app

    monkeypatch.setitem(SERVICES, "post", cast(ServiceSpec, SimpleNamespace(package=package)))
    return CliRunner().invoke(
        app, ["migrate", *command, "--service", "post"], env={"PINSTACK_POST_DATABASE_URL": url}
    )


async def test_upgrade_records_the_lineage_and_downgrade_rewrites_it(
    postgres_server: PostgresServer, images: Images
) -> None:
    url = new_database(postgres_server, "lineage")
    migrations.upgrade(package=images.newer, url=url)
    assert await _lineage(url) == {"0001", "0002", "0003"}
    migrations.downgrade(package=images.newer, url=url)
    assert await _lineage(url) == {"0001", "0002"}
    migrations.downgrade(package=images.newer, url=url, revision="base")
    assert await _lineage(url) is None
    # A database migrated before lineages were recorded gets one on its next `migrate up`.
    migrations.upgrade(package=images.current, url=url)
    await _execute(url, f"DROP TABLE {migrations.LINEAGE_TABLE}")
    status = migrations.upgrade(package=images.current, url=url)
    assert status is not None
    assert status.state is migrations.SchemaState.AT_HEAD
    assert await _lineage(url) == {"0001", "0002"}


async def test_an_older_image_accepts_a_newer_schema_and_leaves_it_alone(
    postgres_server: PostgresServer, images: Images
) -> None:
    url = new_database(postgres_server, "rollback")
    migrations.upgrade(package=images.newer, url=url)

    status = await migrations.schema_status(package=images.current, url=url)
    assert (status.state, status.compatible) == (migrations.SchemaState.AHEAD, True)
    assert (status.current, status.head) == (("0003",), "0002")
    older = await migrations.schema_status(package=images.older, url=url)
    assert older.state is migrations.SchemaState.AHEAD

    # The operator's migration Job of the rolled-back image: a no-op success.
    upgraded = migrations.upgrade(package=images.current, url=url)
    assert upgraded is not None
    assert upgraded.state is migrations.SchemaState.AHEAD
    assert await migrations.current_revision(url=url) == "0003"
    assert await _lineage(url) == {"0001", "0002", "0003"}
    await _execute(url, "SELECT 1 FROM rollback_probe")  # the newer release's table is kept


async def test_behind_unrelated_and_unrecorded_schemas_are_refused(
    postgres_server: PostgresServer, images: Images
) -> None:
    behind = new_database(postgres_server, "behind")
    migrations.upgrade(package=images.older, url=behind)
    status = await migrations.schema_status(package=images.current, url=behind)
    assert (status.state, status.compatible) == (migrations.SchemaState.BEHIND, False)
    empty = new_database(postgres_server, "empty")
    status = await migrations.schema_status(package=images.current, url=empty)
    assert (status.state, status.compatible) == (migrations.SchemaState.BEHIND, False)

    diverged = new_database(postgres_server, "diverged")
    migrations.upgrade(package=images.newer, url=diverged)
    status = await migrations.schema_status(package=images.other, url=diverged)
    assert (status.state, status.compatible) == (migrations.SchemaState.DIVERGED, False)
    with pytest.raises(migrations.SchemaMismatchError, match="without this image's head 0003b"):
        migrations.upgrade(package=images.other, url=diverged)
    assert await migrations.current_revision(url=diverged) == "0003"

    # A revision this image does not ship and no lineage to judge it by: refuse, do not guess.
    await _execute(diverged, f"DROP TABLE {migrations.LINEAGE_TABLE}")
    status = await migrations.schema_status(package=images.current, url=diverged)
    assert (status.state, status.compatible) == (migrations.SchemaState.UNKNOWN, False)
    with pytest.raises(migrations.SchemaMismatchError, match="does not ship"):
        migrations.upgrade(package=images.current, url=diverged)


def test_migrate_check_and_up_commands_after_a_rollback(
    postgres_server: PostgresServer, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database(postgres_server, "cli")
    assert _cli(monkeypatch, images.current, url, "check").exit_code == 1  # nothing migrated
    assert _cli(monkeypatch, images.newer, url, "up").exit_code == 0
    # Rolled back to the current image: ready, and its migration Job succeeds without a change.
    checked = _cli(monkeypatch, images.current, url, "check")
    assert checked.exit_code == 0, checked.output
    assert "newer release" in checked.output
    upgraded = _cli(monkeypatch, images.current, url, "up")
    assert upgraded.exit_code == 0, upgraded.output
    assert "nothing to do" in upgraded.output
    # An image on another branch is neither ready nor able to migrate.
    refused = _cli(monkeypatch, images.other, url, "check")
    assert refused.exit_code == 1
    assert "not migrated" in refused.output
    assert _cli(monkeypatch, images.other, url, "up").exit_code == 1
    # Behind: the older image's schema does not satisfy the current image.
    behind = new_database(postgres_server, "cli_behind")
    assert _cli(monkeypatch, images.older, behind, "up").exit_code == 0
    assert _cli(monkeypatch, images.current, behind, "check").exit_code == 1
    assert _cli(monkeypatch, images.current, behind, "up").exit_code == 0
    assert _cli(monkeypatch, images.current, behind, "check").exit_code == 0
