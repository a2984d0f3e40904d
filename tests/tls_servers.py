"""Real servers behind TLS for the connectivity tests: a PostgreSQL that only takes TLS clients
over TCP, and a Kafka broker with a SASL_SSL listener (PLAIN). Each has a CA of its own, and a
certificate valid for ``localhost`` only, so ``127.0.0.1`` is a host-name mismatch."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pinstack_devinfra.kafka import KafkaBroker, SaslSslListener
from pinstack_devinfra.pki import CertificateAuthority
from pinstack_devinfra.postgres_tls import TlsPostgresServer

__all__ = ["KAFKA_USER", "SecureKafka", "secure_kafka", "tls_postgres"]

KAFKA_USER = "pinstack"


@contextmanager
def tls_postgres(root: Path) -> Iterator[TlsPostgresServer]:
    """PostgreSQL with ``ssl=on``; ``server.ca.cert_path`` is the bundle that verifies it."""
    ca = CertificateAuthority(root / "ca", common_name="pinstack-db-ca")
    with TlsPostgresServer(
        data_dir=root / "server", ca=ca, password=secrets.token_hex(12)
    ) as server:
        yield server


@dataclass(frozen=True, kw_only=True)
class SecureKafka:
    broker: KafkaBroker
    ca: Path
    password: str

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.sasl_ssl_bootstrap_servers


@contextmanager
def secure_kafka(root: Path) -> Iterator[SecureKafka]:
    """A broker whose SASL_SSL listener takes ``KAFKA_USER`` with ``password``."""
    ca = CertificateAuthority(root / "ca", common_name="pinstack-kafka-ca")
    cert, key = ca.issue("broker", common_name="localhost", dns_names=("localhost",), server=True)
    keystore = root / "ca" / "broker.pem"
    keystore.write_bytes(key.read_bytes() + cert.read_bytes())
    password = secrets.token_hex(12)
    listener = SaslSslListener(keystore=keystore, users={KAFKA_USER: password})
    with KafkaBroker(data_dir=root / "broker", sasl_ssl=listener, num_partitions=1) as broker:
        yield SecureKafka(broker=broker, ca=ca.cert_path, password=password)
