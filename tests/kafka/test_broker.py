"""The Kafka harness itself: cached jars, adoption of a running broker, data kept on restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from pinstack_common.events.kafka import ensure_topics
from pinstack_devinfra.kafka import KafkaBroker, kafka_libs

pytestmark = pytest.mark.kafka


def test_cached_jars_need_no_maven(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no mvn to be found: the cache must suffice
    libs = kafka_libs(kafka_broker.version)
    assert any(p.name.startswith("kafka_2.13-") for p in libs.glob("*.jar"))


async def test_a_second_harness_adopts_the_running_broker(kafka_broker: KafkaBroker) -> None:
    """``make dev-up`` after a crashed CLI: the broker kept running is reused, not doubled."""
    topic = f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1"
    await ensure_topics(kafka_broker.bootstrap_servers, [topic])
    second = KafkaBroker(data_dir=kafka_broker.data_dir, keep_running=True)
    with second:
        assert second.bootstrap_servers == kafka_broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": second.bootstrap_servers})
        assert topic in admin.list_topics(timeout=10).topics
    # keep_running: leaving the context did not stop the shared broker.
    assert (
        AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
        .list_topics(timeout=10)
        .brokers
    )


def test_a_cluster_id_starting_with_a_dash_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One random id in 64 encodes with a leading "-" (first byte 0xF8-0xFB); CI met one."""
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))
    monkeypatch.setattr(uuid, "uuid4", lambda: dash_first)
    with KafkaBroker(data_dir=tmp_path / "kafka") as broker:
        meta = (broker.data_dir / "logs" / "meta.properties").read_text()
        assert "cluster.id=-" in meta
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        assert admin.list_topics(timeout=10).brokers


async def test_ensure_topics_is_idempotent(kafka_broker: KafkaBroker) -> None:
    topic = f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1"
    await ensure_topics(kafka_broker.bootstrap_servers, [topic], partitions=3)
    await ensure_topics(kafka_broker.bootstrap_servers, [topic], partitions=5)  # no error...
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    described = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert described.error is None
    assert len(described.partitions) == 3  # ...and the existing topic is left as it was
