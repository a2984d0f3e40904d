"""The event backbone against the real Kafka broker and real PostgreSQL.

The same scenarios as the in-process bus (``tests/integration/test_events_harness.py``), plus
the one only a real broker can show: stopped while events are written, then restarted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from confluent_kafka import Consumer

from pinstack_common.db import Database
from pinstack_common.events import Record, dead_letter_topic
from pinstack_common.events.kafka import KafkaTransport, ensure_topics, record_from_message
from pinstack_devinfra.kafka import KafkaBroker
from pinstack_devinfra.postgres import PostgresServer
from tests.integration.test_events_harness import (
    Stack,
    consumer_crash_before_commit,
    consumer_metadata,
    database_outage_is_not_poison,
    poison_message_is_dead_lettered,
    producer_metadata,
    publishing_survives_an_outage,
    relay_crash_between_publish_and_mark,
    relay_publishes_right_after_commit,
    replicas_keep_per_key_order,
    trace_context_reaches_the_consumer,
)

pytestmark = pytest.mark.kafka


async def _database(server: PostgresServer, prefix: str, metadata: object) -> Database:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server.ensure_database(name)
    database = Database(url=server.url(name), component=prefix, pool_size=4)
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)  # type: ignore[attr-defined]
    return database


def _read(bootstrap: str, topic: str, count: int, within: float) -> list[Record]:
    """Read the first ``count`` records of ``topic`` with a throwaway group."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Record] = []
    deadline = time.monotonic() + within
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            found.append(record_from_message(message))
    finally:
        consumer.close()
    return sorted(found, key=lambda r: (r.partition, r.offset))


@pytest.fixture
async def stack(postgres_server: PostgresServer, kafka_broker: KafkaBroker) -> AsyncIterator[Stack]:
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1"
    await ensure_topics(bootstrap, [topic, dead_letter_topic(topic)], partitions=3)
    producer = await _database(postgres_server, "evprod", producer_metadata)
    consumer = await _database(postgres_server, "evcons", consumer_metadata)
    transport = KafkaTransport(
        bootstrap_servers=bootstrap, client_id="events-test", delivery_timeout=20.0,
        redelivery_delay=0.2,
    )  # fmt: skip

    async def read_topic(name: str, count: int, within: float) -> list[Record]:
        return await asyncio.to_thread(_read, bootstrap, name, count, within)

    stack = Stack(
        producer_db=producer,
        consumer_db=consumer,
        transport=transport,
        topic=topic,
        read_topic=read_topic,
    )
    await transport.start()
    try:
        yield stack
    finally:
        await stack.stop_all()
        await transport.stop()
        await producer.close()
        await consumer.close()


async def test_relay_crash_between_publish_and_mark_handles_once(stack: Stack) -> None:
    await relay_crash_between_publish_and_mark(stack)


async def test_consumer_crash_before_commit_redelivers_and_dedupes(stack: Stack) -> None:
    await consumer_crash_before_commit(stack)


async def test_poison_message_goes_to_dead_letter_without_blocking(stack: Stack) -> None:
    await poison_message_is_dead_lettered(stack)


async def test_database_outage_is_redelivered_not_dead_lettered(stack: Stack) -> None:
    await database_outage_is_not_poison(stack)


async def test_trace_context_reaches_the_consumer(stack: Stack) -> None:
    await trace_context_reaches_the_consumer(stack)


async def test_relay_publishes_right_after_commit(stack: Stack) -> None:
    await relay_publishes_right_after_commit(stack)


async def test_relay_replicas_keep_per_key_order(stack: Stack) -> None:
    await replicas_keep_per_key_order(stack)


async def test_broker_restart_loses_nothing_and_duplicates_nothing(
    stack: Stack, kafka_broker: KafkaBroker
) -> None:
    async def outage() -> None:
        await asyncio.to_thread(kafka_broker.stop)

    async def recover() -> None:
        await asyncio.sleep(2)  # let the relay fail a few times against the dead broker
        await asyncio.to_thread(kafka_broker.start)

    await publishing_survives_an_outage(stack, outage=outage, recover=recover)


async def test_ensure_topics_is_idempotent(kafka_broker: KafkaBroker) -> None:
    topic = f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1"
    await ensure_topics(kafka_broker.bootstrap_servers, [topic])
    await ensure_topics(kafka_broker.bootstrap_servers, [topic])
