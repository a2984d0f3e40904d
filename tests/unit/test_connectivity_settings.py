"""How the services' connectivity settings become client configuration: the database URL's
libpq TLS parameters (asyncpg's ``ssl`` argument) and the Kafka security settings (librdkafka
properties). The real servers are in tests/integration/test_database_tls.py and
tests/kafka/test_kafka_security.py."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from pinstack_common.db.engine import DatabaseTlsError, split_tls
from pinstack_common.settings import ServiceSettings
from pinstack_devinfra.pki import CertificateAuthority

_BASE = "postgresql+asyncpg://svc:pw@db.example:5432/svc"


def _settings(**values: str) -> ServiceSettings:
    return ServiceSettings(internal_token="unit-test-token", **values)  # type: ignore[arg-type]


def test_verify_full_trusts_the_bundle_and_checks_the_host(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    url, args = split_tls(f"{_BASE}?sslmode=verify-full&sslrootcert={ca.cert_path}")
    context = args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "pinstack-test-ca"),),)
    ]
    assert dict(url.query) == {}  # asyncpg.connect would refuse the libpq names


def test_verify_ca_does_not_check_the_host(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    _url, args = split_tls(f"{_BASE}?sslmode=verify-ca&sslrootcert={ca.cert_path}")
    assert args["ssl"].verify_mode == ssl.CERT_REQUIRED
    assert not args["ssl"].check_hostname


def test_weaker_modes_pass_through_and_no_mode_means_asyncpgs_default() -> None:
    assert split_tls(f"{_BASE}?sslmode=require")[1] == {"ssl": "require"}
    assert split_tls(f"{_BASE}?ssl=disable")[1] == {"ssl": "disable"}
    assert split_tls(_BASE)[1] == {}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sslmode=verify-everything", "is not one of"),
        ("sslmode=require&sslrootcert=/ca.crt", "only used with sslmode=verify-ca"),
        ("sslmode=verify-full&sslrootcert=/nonexistent/ca.crt", "is not a readable file"),
        ("ssl=require&sslmode=verify-full", "disagree"),
    ],
)
def test_inconsistent_tls_parameters_are_refused_with_the_reason(query: str, message: str) -> None:
    with pytest.raises(DatabaseTlsError, match=message):
        split_tls(f"{_BASE}?{query}")


def test_a_bundle_without_a_certificate_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("not a certificate\n")
    with pytest.raises(DatabaseTlsError, match="holds no PEM certificate"):
        split_tls(f"{_BASE}?sslmode=verify-full&sslrootcert={bundle}")


def test_plaintext_kafka_needs_no_properties_beyond_the_protocol() -> None:
    assert _settings().kafka_client_config() == {"security.protocol": "PLAINTEXT"}


def test_sasl_ssl_kafka_maps_to_librdkafka_properties() -> None:
    settings = _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_ca_location="/etc/kafka-ca/ca.crt",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="pinstack",
        kafka_sasl_password="s3cret",
    )
    assert settings.kafka_client_config() == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/etc/kafka-ca/ca.crt",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "pinstack",
        "sasl.password": "s3cret",
    }


def test_ssl_kafka_without_a_bundle_uses_the_system_store() -> None:
    assert _settings(kafka_security_protocol="SSL").kafka_client_config() == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs PINSTACK_KAFKA_SASL_USERNAME"),
        ({"kafka_sasl_username": "pinstack"}, "does not authenticate"),
        ({"kafka_ssl_ca_location": "/ca.crt"}, "does not use TLS"),
    ],
)
def test_inconsistent_kafka_security_is_refused_at_start(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**values)
