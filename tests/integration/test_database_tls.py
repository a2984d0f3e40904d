"""Services reach PostgreSQL over TLS with ``sslmode=verify-full`` and a CA bundle, and refuse a
server their CA did not sign or whose certificate names another host — at once, with the TLS
verdict, not after a connect timeout.

The server is real (the wheel's binaries with ``ssl=on``); its certificate is valid for
``localhost`` only, so ``127.0.0.1`` is the host-name mismatch.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from pinstack_common.db import migrations
from pinstack_common.db.database import Database
from pinstack_devinfra.pki import CertificateAuthority
from pinstack_devinfra.postgres_tls import TlsPostgresServer
from tests.tls_servers import tls_postgres

# A refusal is a TLS verdict on the first round trip; far below asyncpg's 60 s connect timeout.
_VERDICT_SECONDS = 10.0


@pytest.fixture(scope="module", name="tls_postgres")
def _tls_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgresServer]:
    with tls_postgres(tmp_path_factory.mktemp("tls-postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return CertificateAuthority(tmp_path_factory.mktemp("stranger-ca")).cert_path


async def _ssl_in_use(url: str) -> bool:
    database = Database(url=url, component="tls-test", pool_size=1)
    try:
        async with database.read() as session:
            row = await session.execute(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
            return bool(row.scalar_one())
    finally:
        await database.close()


async def _refusal(url: str) -> BaseException:
    database = Database(url=url, component="tls-test", pool_size=1)
    try:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            await asyncio.wait_for(database.ping(), _VERDICT_SECONDS)
    finally:
        await database.close()
    return caught.value


async def test_verify_full_with_the_servers_ca_connects_over_tls(
    tls_postgres: TlsPostgresServer,
) -> None:
    url = tls_postgres.url(sslmode="verify-full", sslrootcert=str(tls_postgres.ca.cert_path))
    assert await _ssl_in_use(url)


async def test_a_ca_that_did_not_sign_the_server_is_refused(
    tls_postgres: TlsPostgresServer, stranger_ca: Path
) -> None:
    error = await _refusal(tls_postgres.url(sslmode="verify-full", sslrootcert=str(stranger_ca)))
    assert "certificate verify failed" in str(error)


async def test_a_certificate_for_another_host_is_refused_under_verify_full(
    tls_postgres: TlsPostgresServer,
) -> None:
    url = tls_postgres.url(
        host="127.0.0.1", sslmode="verify-full", sslrootcert=str(tls_postgres.ca.cert_path)
    )
    error = await _refusal(url)
    assert "Hostname mismatch" in str(error) or "IP address mismatch" in str(error)


async def test_verify_ca_checks_the_signer_but_not_the_host_name(
    tls_postgres: TlsPostgresServer,
) -> None:
    url = tls_postgres.url(
        host="127.0.0.1", sslmode="verify-ca", sslrootcert=str(tls_postgres.ca.cert_path)
    )
    assert await _ssl_in_use(url)


async def test_asyncpgs_own_ssl_parameter_reads_as_sslmode(
    tls_postgres: TlsPostgresServer,
) -> None:
    # The URLs earlier operator versions wrote into the database Secrets (`?ssl=verify-full`).
    url = tls_postgres.url(ssl="verify-full", sslrootcert=str(tls_postgres.ca.cert_path))
    assert await _ssl_in_use(url)


async def test_migrations_run_over_verify_full(tls_postgres: TlsPostgresServer) -> None:
    # What the operator's migration Job and the pods' wait-for-schema check do with the URL.
    url = tls_postgres.url(sslmode="verify-full", sslrootcert=str(tls_postgres.ca.cert_path))
    await asyncio.to_thread(migrations.upgrade, package="pinstack_relation", url=url)
    assert await migrations.current_revision(url=url) == migrations.head_revision(
        package="pinstack_relation"
    )
