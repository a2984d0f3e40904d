"""The operator reaches a PostgreSQL that takes only TLS clients (``sslmode=verify-full`` with the
CA bundle of ``postgres.caSecretRef``) and a Kafka broker over SASL_SSL (``kafka.caSecretRef``,
``kafka.sasl``); a wrong CA or a host name the certificate does not carry is reported in the
stack's condition with the TLS verdict. What it writes for the pods carries the same TLS
settings: the database URL's ``sslmode``/``sslrootcert`` and the migration Job's CA mount."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_devinfra.pki import CertificateAuthority
from pinstack_devinfra.postgres_tls import TlsPostgresServer
from pinstack_operator.connectivity import POSTGRES_CA_DIR, POSTGRES_CA_FILE
from pinstack_operator.resources import StackRef, migration_job_name
from tests.polling import eventually
from tests.tls_servers import KAFKA_USER, SecureKafka, secure_kafka, tls_postgres

from .conftest import StackFactory


@pytest.fixture(scope="module", name="tls_postgres")
def _tls_postgres(k8s_workdir: Path) -> Iterator[TlsPostgresServer]:
    with tls_postgres(k8s_workdir / "tls-postgres") as server:
        yield server


@pytest.fixture(scope="module", name="secure_kafka")
def _secure_kafka(k8s_workdir: Path) -> Iterator[SecureKafka]:
    with secure_kafka(k8s_workdir / "secure-kafka") as kafka:
        yield kafka


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _secret(stacks: StackFactory, name: str, data: dict[str, str]) -> None:
    await stacks.api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": stacks.namespace},
            "data": {key: _b64(value) for key, value in data.items()},
        }
    )


async def _secure_stack(
    stacks: StackFactory,
    postgres: TlsPostgresServer,
    kafka: SecureKafka,
    *,
    host: str = "localhost",
    ca: Path | None = None,
    kafka_password: str | None = None,
) -> None:
    await _secret(stacks, "pg-admin-tls", {"username": "postgres", "password": postgres.password})
    await _secret(stacks, "pg-ca", {"bundle.pem": (ca or postgres.ca.cert_path).read_text()})
    await _secret(stacks, "kafka-ca", {"ca.crt": kafka.ca.read_text()})
    login = {"username": KAFKA_USER, "password": kafka_password or kafka.password}
    await _secret(stacks, "kafka-login", login)
    manifest = stacks.manifest(
        postgres={
            "host": host,
            "port": postgres.port,
            "sslmode": "verify-full",
            "caSecretRef": {"name": "pg-ca", "key": "bundle.pem"},
            "adminCredentialsSecretRef": {"name": "pg-admin-tls"},
        },
        kafka={
            "bootstrapServers": kafka.bootstrap_servers,
            "securityProtocol": "SASL_SSL",
            "caSecretRef": {"name": "kafka-ca"},
            "sasl": {"mechanism": "PLAIN", "credentialsSecretRef": {"name": "kafka-login"}},
        },
        monitoring={"enabled": False},
    )
    await stacks.api.apply(manifest)


async def _condition(stacks: StackFactory, kind: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        condition = await stacks.condition(kind)
        return condition if condition and condition["status"] == status else None

    return await eventually(probe, what=f"{kind}={status}", within=90)


def _decode(secret: dict[str, Any] | None) -> dict[str, str]:
    assert secret is not None
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


async def test_verify_full_postgres_and_sasl_ssl_kafka_are_provisioned(
    stacks: StackFactory, tls_postgres: TlsPostgresServer, secure_kafka: SecureKafka
) -> None:
    await _secure_stack(stacks, tls_postgres, secure_kafka)
    await _condition(stacks, "DatabasesReady", "True")
    await _condition(stacks, "TopicsReady", "True")

    secret = _decode(await stacks.secret("stack-user-db"))
    assert secret["sslmode"] == "verify-full"
    assert secret["sslrootcert"] == POSTGRES_CA_FILE
    assert secret["database-url"].endswith(
        f"@localhost:{tls_postgres.port}/{stacks.database('user')}"
        f"?sslmode=verify-full&sslrootcert={POSTGRES_CA_FILE}"
    )
    stack = await stacks.get()
    assert stack is not None
    ref = StackRef(name="stack", namespace=stacks.namespace, uid=stack["metadata"]["uid"])
    job_name = migration_job_name(ref, service="user", image="registry.local/pinstack:1.0.0")

    async def job() -> dict[str, Any] | None:
        return await stacks.api.find("batch/v1", "Job", namespace=stacks.namespace, name=job_name)

    pod = (await eventually(job, what=f"Job {job_name}"))["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {
            "name": "postgres-ca",
            "secret": {
                "secretName": "pg-ca",
                "defaultMode": 0o444,
                "items": [{"key": "bundle.pem", "path": "ca.crt"}],
            },
        }
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "postgres-ca", "mountPath": POSTGRES_CA_DIR, "readOnly": True}
    ]


_DB_FAILED = "DatabaseProvisioningFailed"


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        ("foreign CA", ("DatabasesReady", _DB_FAILED, "certificate verify failed")),
        ("host name", ("DatabasesReady", _DB_FAILED, "mismatch")),
        ("Kafka login", ("TopicsReady", "TopicProvisioningFailed", "SASL authentication error")),
    ],
)  # fmt: skip
async def test_a_refusal_is_reported_with_its_verdict(
    stacks: StackFactory,
    tls_postgres: TlsPostgresServer,
    secure_kafka: SecureKafka,
    refusal: str,
    expected: tuple[str, str, str],
) -> None:
    options: dict[str, dict[str, Any]] = {
        "foreign CA": {"ca": CertificateAuthority(tls_postgres.directory / "stranger").cert_path},
        "host name": {"host": "127.0.0.1"},  # the certificate names localhost only
        "Kafka login": {"kafka_password": "not-the-password"},
    }
    await _secure_stack(stacks, tls_postgres, secure_kafka, **options[refusal])
    kind, reason, verdict = expected
    condition = await _condition(stacks, kind, "False")
    assert condition["reason"] == reason
    assert verdict in condition["message"]


async def test_a_missing_ca_secret_is_reported(stacks: StackFactory) -> None:
    manifest = stacks.manifest()
    manifest["spec"]["postgres"] |= {"sslmode": "verify-full", "caSecretRef": {"name": "absent"}}
    await stacks.api.apply(manifest)
    condition = await _condition(stacks, "DatabasesReady", "False")
    assert condition["reason"] == "ConnectionSecretMissing"
    assert "absent" in condition["message"]


@pytest.mark.parametrize(
    ("postgres_patch", "kafka_patch", "message"),
    [
        ({"sslmode": "require", "caSecretRef": {"name": "ca"}}, {},
         "caSecretRef is only used with sslmode verify-ca or verify-full"),
        ({}, {"securityProtocol": "SASL_SSL"},
         "sasl is required with securityProtocol SASL_SSL or SASL_PLAINTEXT"),
        ({}, {"sasl": {"credentialsSecretRef": {"name": "login"}}},
         "sasl is required with securityProtocol SASL_SSL or SASL_PLAINTEXT"),
        ({}, {"securityProtocol": "SASL_PLAINTEXT", "caSecretRef": {"name": "ca"},
              "sasl": {"credentialsSecretRef": {"name": "login"}}},
         "caSecretRef is only used with securityProtocol SSL or SASL_SSL"),
    ],
)  # fmt: skip
async def test_inconsistent_tls_settings_are_refused_by_the_api_server(
    stacks: StackFactory,
    postgres_patch: dict[str, Any],
    kafka_patch: dict[str, Any],
    message: str,
) -> None:
    manifest = stacks.manifest()
    manifest["spec"]["postgres"] |= postgres_patch
    manifest["spec"]["kafka"] |= kafka_patch
    with pytest.raises(ApiException) as refused:
        await stacks.api.apply(manifest)
    assert refused.value.status == 422
    assert message in str(refused.value.body)
