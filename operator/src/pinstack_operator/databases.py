"""Per-service PostgreSQL databases and login roles, provisioned with asyncpg.

Every statement is idempotent. A role is created, or has its password set again only when the
one in the credentials Secret differs from the one it was last given (a fingerprint in its
ownership marker, ``pinstack_operator.ownership``); a database is created or has its owner
corrected. Objects whose marker names another stack are left alone: neither adopted nor dropped.
Identifiers and literals are quoted by PostgreSQL itself (``format('%I', ...)`` / ``%L``), never
by string concatenation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from pinstack_operator.connectivity import postgres_ssl
from pinstack_operator.ownership import Marker, password_fingerprint, password_matches

__all__ = ["AdminConnection", "DatabaseGrant", "EnsureReport", "PostgresAdmin"]

_ROLE_OPTIONS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
# A role's or database's oid and comment (the ownership marker), by name.
_MARKED_QUERIES = {
    "pg_authid": "SELECT oid, shobj_description(oid, 'pg_authid') AS comment "
    "FROM pg_roles WHERE rolname = $1",
    "pg_database": "SELECT oid, shobj_description(oid, 'pg_database') AS comment "
    "FROM pg_database WHERE datname = $1",
}


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
    """One service's database, owned by a login role of the same name, for one stack."""

    database: str
    role: str
    password: str
    owner: Marker  # the stack provisioning it (``password`` empty: set per pass)
    # Earlier stacks whose objects this one may take over: the uid its credentials Secret was
    # last written by (a stack of the same name that was deleted with ``reclaimPolicy: Retain``).
    adoptable: frozenset[str] = frozenset()

    def may_own(self, marker: Marker | None) -> bool:
        """Unmarked objects (earlier operator versions) and this stack's own are ours."""
        return marker is None or marker.stack_uid in {self.owner.stack_uid, *self.adoptable}

    def refusal(self, what: str, marker: Marker) -> str:
        return (
            f"{what} {getattr(self, what)!r} belongs to stack {marker.stack or '?'} "
            f"(uid {marker.stack_uid}); remove its comment (COMMENT ON {what.upper()} "
            f"{getattr(self, what)} IS NULL) to hand it over"
        )


@dataclass(frozen=True, kw_only=True)
class EnsureReport:
    """What ``ensure`` did: database name to oid, and the objects it refused to touch."""

    oids: dict[str, str]
    refused: list[str]


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

    @staticmethod
    async def _marked(conn: asyncpg.Connection, catalog: str, name: str) -> Any:
        """``(oid, marker)`` of a role (``pg_authid``) or database, ``None`` when missing."""
        row = await conn.fetchrow(_MARKED_QUERIES[catalog], name)
        return None if row is None else (str(row["oid"]), Marker.parse(row["comment"]))

    async def ensure(self, grants: list[DatabaseGrant]) -> EnsureReport:
        """Create or correct every role and database this stack may own."""
        report = EnsureReport(oids={}, refused=[])
        async with self._connect() as conn:
            for grant in grants:
                role = await self._marked(conn, "pg_authid", grant.role)
                database = await self._marked(conn, "pg_database", grant.database)
                refused = [grant.refusal(what, found[1])
                           for what, found in (("role", role), ("database", database))
                           if found is not None and not grant.may_own(found[1])]  # fmt: skip
                if refused:
                    report.refused.extend(refused)
                    continue
                await self._ensure_role(conn, grant, role[1] if role else None, exists=bool(role))
                report.oids[grant.database] = await self._ensure_database(
                    conn, grant, database[1] if database else None, exists=bool(database)
                )
        return report

    async def _ensure_role(
        self, conn: asyncpg.Connection, grant: DatabaseGrant, marker: Marker | None, *, exists: bool
    ) -> None:
        """Options every pass; the password only when it differs from the one last set."""
        if exists and marker is not None and password_matches(grant.password, marker.password):
            fingerprint = marker.password
            await conn.execute(
                await self._format(conn, f"ALTER ROLE %I WITH {_ROLE_OPTIONS}", grant.role)
            )
        else:
            fingerprint = password_fingerprint(grant.password)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                await self._format(
                    conn,
                    f"{verb} ROLE %I WITH {_ROLE_OPTIONS} PASSWORD %L",
                    grant.role,
                    grant.password,
                )
            )
        owner = Marker(stack_uid=grant.owner.stack_uid, stack=grant.owner.stack,
                       password=fingerprint)  # fmt: skip
        if owner != marker:
            await conn.execute(
                await self._format(conn, "COMMENT ON ROLE %I IS %L", grant.role, owner.comment())
            )

    async def _ensure_database(
        self, conn: asyncpg.Connection, grant: DatabaseGrant, marker: Marker | None, *, exists: bool
    ) -> str:
        """The database, owned by the role and marked as this stack's; returns its oid."""
        statement = "ALTER DATABASE %I OWNER TO %I" if exists else "CREATE DATABASE %I OWNER %I"
        await conn.execute(await self._format(conn, statement, grant.database, grant.role))
        await conn.execute(
            await self._format(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", grant.database)
        )
        if grant.owner != marker:
            await conn.execute(
                await self._format(
                    conn, "COMMENT ON DATABASE %I IS %L", grant.database, grant.owner.comment()
                )
            )
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = $1", grant.database)
        return str(oid)

    async def missing(self, databases: list[str]) -> list[str]:
        """Which of ``databases`` do not exist (for drift detection and tests)."""
        async with self._connect() as conn:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", databases
            )
        present = {row["datname"] for row in rows}
        return [name for name in databases if name not in present]

    async def drop(self, grants: list[DatabaseGrant]) -> tuple[list[str], list[str]]:
        """Drop each database (terminating its sessions) and then its role, unless either is
        marked as another stack's or not marked at all; returns what was dropped, and what was
        kept and why."""
        dropped: list[str] = []
        kept: list[str] = []
        async with self._connect() as conn:
            for grant in grants:
                role = await self._marked(conn, "pg_authid", grant.role)
                database = await self._marked(conn, "pg_database", grant.database)
                found = [(what, item[1]) for what, item in (("role", role), ("database", database))
                         if item is not None]  # fmt: skip
                foreign = [grant.refusal(what, marker) for what, marker in found
                           if marker is not None and not grant.may_own(marker)]  # fmt: skip
                unmarked = [f"{what} {getattr(grant, what)!r} is not marked as this stack's"
                            for what, marker in found if marker is None]  # fmt: skip
                if foreign or unmarked:
                    kept.extend([*foreign, *unmarked])
                    continue
                await conn.execute(
                    await self._format(
                        conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", grant.database
                    )
                )
                await conn.execute(await self._format(conn, "DROP ROLE IF EXISTS %I", grant.role))
                dropped.append(f"database {grant.database} and role {grant.role}")
        return dropped, kept
