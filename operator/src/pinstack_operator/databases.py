"""Per-service PostgreSQL databases and login roles, provisioned with asyncpg.

Every statement is idempotent: the role is created or has its password reset to the one in
the credentials Secret, the database is created or has its owner corrected. Identifiers and
literals are quoted by PostgreSQL itself (``format('%I', ...)`` / ``%L``), never by string
concatenation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from pinstack_operator.connectivity import postgres_ssl

__all__ = ["AdminConnection", "DatabaseGrant", "PostgresAdmin"]

_ROLE_OPTIONS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"


@dataclass(frozen=True, kw_only=True)
class AdminConnection:
    """Where and how the operator connects as the PostgreSQL administrator."""

    host: str
    port: int
    user: str
    password: str
    database: str = "postgres"
    sslmode: str = "prefer"
    # PEM bundle that verifies the server under verify-ca/verify-full (spec.postgres.caSecretRef).
    ca_pem: str | None = None


@dataclass(frozen=True, kw_only=True)
class DatabaseGrant:
    """One service's database, owned by a login role of the same name."""

    database: str
    role: str
    password: str


class PostgresAdmin:
    """Provisions and drops databases and roles on one PostgreSQL server."""

    def __init__(self, *, connection: AdminConnection, timeout: float = 10.0) -> None:
        self._connection = connection
        self._timeout = timeout

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[asyncpg.Connection]:
        target = self._connection
        # PostgreSQL has no TLS on a Unix socket.
        ssl = False if target.host.startswith("/") else postgres_ssl(target.sslmode, target.ca_pem)
        conn = await asyncpg.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password or None,
            database=target.database,
            ssl=ssl,
            timeout=self._timeout,
        )
        try:
            yield conn
        finally:
            await conn.close()

    @staticmethod
    async def _format(conn: asyncpg.Connection, template: str, *args: str) -> str:
        """``template`` with ``%I``/``%L`` filled in by PostgreSQL's ``format()``."""
        placeholders = "".join(f", ${index}::text" for index in range(2, len(args) + 2))
        statement = await conn.fetchval(f"SELECT format($1::text{placeholders})", template, *args)
        return str(statement)

    async def ensure(self, grants: list[DatabaseGrant]) -> list[str]:
        """Create or correct every role and database; returns the databases that now exist."""
        ready: list[str] = []
        async with self._connect() as conn:
            for grant in grants:
                role_exists = await conn.fetchval(
                    "SELECT 1 FROM pg_roles WHERE rolname = $1", grant.role
                )
                verb = "ALTER" if role_exists else "CREATE"
                await conn.execute(
                    await self._format(
                        conn,
                        f"{verb} ROLE %I WITH {_ROLE_OPTIONS} PASSWORD %L",
                        grant.role,
                        grant.password,
                    )
                )
                db_exists = await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", grant.database
                )
                if db_exists:
                    statement = "ALTER DATABASE %I OWNER TO %I"
                else:
                    statement = "CREATE DATABASE %I OWNER %I"
                await conn.execute(await self._format(conn, statement, grant.database, grant.role))
                await conn.execute(
                    await self._format(
                        conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", grant.database
                    )
                )
                ready.append(grant.database)
        return ready

    async def missing(self, databases: list[str]) -> list[str]:
        """Which of ``databases`` do not exist (for drift detection and tests)."""
        async with self._connect() as conn:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", databases
            )
        present = {row["datname"] for row in rows}
        return [name for name in databases if name not in present]

    async def drop(self, grants: list[DatabaseGrant]) -> None:
        """Drop each database (terminating its sessions) and then its role."""
        async with self._connect() as conn:
            for grant in grants:
                await conn.execute(
                    await self._format(
                        conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", grant.database
                    )
                )
                await conn.execute(await self._format(conn, "DROP ROLE IF EXISTS %I", grant.role))
