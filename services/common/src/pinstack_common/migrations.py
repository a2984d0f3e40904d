"""Alembic, driven from code: each service keeps its scripts in ``<package>/migrations``.

``pinstack migrate`` and ``pinstack up`` call :func:`upgrade` / :func:`downgrade`; each service's
``migrations/env.py`` is two lines that call :func:`run_env` with its metadata.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["current_revision", "downgrade", "head_revision", "run_env", "upgrade"]


def _config(package: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(*, package: str, url: str, revision: str = "head") -> None:
    command.upgrade(_config(package, url), revision)


def downgrade(*, package: str, url: str, revision: str = "-1") -> None:
    command.downgrade(_config(package, url), revision)


def head_revision(*, package: str) -> str | None:
    return ScriptDirectory.from_config(_config(package, "postgresql://unused")).get_current_head()


async def current_revision(*, url: str) -> str | None:
    """The revision a database is at (None before the first migration)."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py`` (online mode, async driver)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    _run_in_thread(run)


def _run_in_thread(factory: Any) -> None:
    """Alembic's command API is sync; when called from a running loop, migrate in a thread."""
    import threading

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
