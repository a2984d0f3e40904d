"""The services' Kafka clients over SASL_SSL: a real broker with a TLS listener (a certificate
from a CA of the test's own) and PLAIN logins; the settings a pod gets from the pinstack chart
(``PINSTACK_KAFKA_SECURITY_PROTOCOL``, ``..._SSL_CA_LOCATION``, ``..._SASL_*``) are all the
clients are given."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinstack_common.events.envelope import Record
from pinstack_common.events.kafka import ensure_topics
from pinstack_common.runtime import ServiceRuntime
from pinstack_common.settings import ServiceSettings
from pinstack_devinfra.pki import CertificateAuthority
from tests.polling import eventually
from tests.tls_servers import KAFKA_USER, SecureKafka, secure_kafka

pytestmark = pytest.mark.kafka


def _settings(kafka: SecureKafka, **overrides: str) -> ServiceSettings:
    values = {
        "internal_token": "kafka-security-test",
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_ssl_ca_location": str(kafka.ca),
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": KAFKA_USER,
        "kafka_sasl_password": kafka.password,
        **overrides,
    }
    return ServiceSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    with secure_kafka(tmp_path_factory.mktemp("kafka-sasl-ssl")) as kafka:
        yield kafka


async def test_producer_and_consumer_use_sasl_ssl_from_the_settings(
    secure_broker: SecureKafka,
) -> None:
    settings = _settings(secure_broker)
    topic = f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1"
    await ensure_topics(
        settings.kafka_bootstrap_servers, [topic], partitions=1,
        client_config=settings.kafka_client_config(),
    )  # fmt: skip
    # The transport exactly as a service's composition root gets it.
    runtime = ServiceRuntime(name="tls", settings=settings, shared_transport=None)
    received: list[Record] = []

    async def handler(record: Record) -> None:
        received.append(record)

    try:
        transport = await runtime.transport()
        subscriber = transport.subscriber(
            group=f"g{uuid.uuid4().hex[:6]}", topics=[topic], handler=handler, component="test"
        )
        await subscriber.start()
        try:
            await transport.publish([Record(topic=topic, key=b"k", value=b"over-tls")])
            await eventually(
                lambda: [r.value for r in received] == [b"over-tls"], within=60, what="the record"
            )
        finally:
            await subscriber.stop()
    finally:
        await runtime.close()


async def _create_refused(settings: ServiceSettings, reason: str) -> None:
    with pytest.raises(RuntimeError, match=reason):
        await asyncio.wait_for(
            ensure_topics(
                settings.kafka_bootstrap_servers, ["pinstack.never.events.v1"],
                wait_seconds=10, client_config=settings.kafka_client_config(),
            ),
            60,
        )  # fmt: skip


async def test_a_wrong_password_is_an_authentication_error(secure_broker: SecureKafka) -> None:
    settings = _settings(secure_broker, kafka_sasl_password="not-the-password")
    await _create_refused(settings, "SASL authentication error")


async def test_a_broker_certificate_from_another_ca_is_refused(
    secure_broker: SecureKafka, tmp_path: Path
) -> None:
    stranger = CertificateAuthority(tmp_path / "stranger").cert_path
    settings = _settings(secure_broker, kafka_ssl_ca_location=str(stranger))
    await _create_refused(settings, "certificate verify failed")
