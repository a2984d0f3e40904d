"""The installed stack moved to PostgreSQL over TLS with ``sslmode=verify-full``, the way
docs/kubernetes.md ("Connectivity") tells a user: a CA Secret named in the PinstackStack and in
the chart. Afterwards the server takes TCP clients only over TLS, so every service still working
proves it verifies the server with that CA and its host name.

The dev PostgreSQL keeps its data in an emptyDir, so it is not restarted: its serving
certificate is written into its data directory and ``ssl`` is turned on by a reload.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from pinstack_devinfra.pki import CertificateAuthority
from tests.cluster.conftest import REPO, Installed
from tests.polling import wait_until

HOST = "postgresql.pinstack-infra.svc"
CA_SECRET = "pinstack-postgres-ca"


def _psql(installed: Installed, sql: str) -> str:
    return installed.cluster.kubectl(
        "exec", "-n", "pinstack-infra", "postgresql-0", "--",
        "psql", "-U", "postgres", "-tA", "-c", sql,
    ).strip()  # fmt: skip


def _write_in_pgdata(installed: Installed, name: str, content: bytes) -> None:
    installed.cluster.kubectl(
        "exec", "-i", "-n", "pinstack-infra", "postgresql-0", "--",
        "sh", "-c", f'umask 077 && cat > "$PGDATA/{name}"', stdin=content.decode(),
    )  # fmt: skip


def _enable_tls(installed: Installed, ca: CertificateAuthority) -> None:
    cert, key = ca.issue(
        "postgresql", common_name=HOST, dns_names=(HOST, f"{HOST}.cluster.local"), server=True
    )
    _write_in_pgdata(installed, "server.crt", cert.read_bytes())
    _write_in_pgdata(installed, "server.key", key.read_bytes())
    _psql(installed, "ALTER SYSTEM SET ssl = on")
    _psql(installed, "SELECT pg_reload_conf()")
    wait_until(lambda: _psql(installed, "SHOW ssl") == "on", what="ssl=on after the reload")


def _tls_only(installed: Installed) -> None:
    """Every TCP rule becomes hostssl: a client without TLS is refused from now on."""
    installed.cluster.kubectl(
        "exec", "-n", "pinstack-infra", "postgresql-0", "--",
        "sh", "-c", 'sed -i "s/^host /hostssl /" "$PGDATA/pg_hba.conf"',
    )  # fmt: skip
    _psql(installed, "SELECT pg_reload_conf()")


def _database_secret(installed: Installed) -> dict[str, str]:
    secret = installed.cluster.kubectl_json("get", "secret", "pinstack-user-db", "-n", "default")
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_services_reach_postgres_with_verify_full(installed: Installed, tmp_path: Path) -> None:
    cluster = installed.cluster
    ca = CertificateAuthority(tmp_path / "ca", common_name="pinstack-cluster-db-ca")
    _enable_tls(installed, ca)
    secret: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": CA_SECRET, "namespace": "default"},
        "stringData": {"ca.crt": ca.cert_path.read_text()},
    }  # fmt: skip
    cluster.apply([secret])

    # The docs' two steps: the stack (operator side), then the chart (pods).
    patch = {"spec": {"postgres": {"sslmode": "verify-full", "caSecretRef": {"name": CA_SECRET}}}}
    cluster.kubectl("patch", "pinstackstack", "pinstack", "-n", "default", "--type=merge",
                    "-p", json.dumps(patch))  # fmt: skip
    wait_until(
        lambda: _database_secret(installed).get("sslmode") == "verify-full",
        within=180, what="the operator rewrote the database Secrets",
    )  # fmt: skip
    assert _database_secret(installed)["database-url"].endswith(
        "?sslmode=verify-full&sslrootcert=/var/run/secrets/pinstack/postgres-ca/ca.crt"
    )
    cluster.helm("upgrade", "pinstack", str(REPO / "charts" / "pinstack"), "--reuse-values",
                 "--set", f"postgres.caSecret.name={CA_SECRET}", "--wait", "--timeout", "10m",
                 timeout=660)  # fmt: skip
    _tls_only(installed)
    cluster.kubectl("wait", "-n", "default", "pinstackstack/pinstack", "--for=condition=Ready",
                    "--timeout=300s", timeout=320)  # fmt: skip

    api = installed.api

    async def journey() -> None:
        alice = await api.register()
        await api.login(alice)
        post = await api.request(
            "POST", "/api/v1/posts", json={"title": "over tls"}, headers=alice.headers
        )
        assert post.status_code == 201, post.text

    api.netns.run(journey(), timeout=300)
    sessions = _psql(
        installed,
        "SELECT a.usename || ':' || s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a "
        "USING (pid) WHERE a.usename LIKE 'pinstack_%'",
    ).split()
    assert sessions, "no service holds a PostgreSQL session"
    assert all(entry.endswith(":true") for entry in sessions), sessions
    installed.report(f"PostgreSQL verify-full: {len(sessions)} service sessions, all over TLS")
