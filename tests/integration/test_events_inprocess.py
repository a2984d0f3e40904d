"""The event backbone's scenarios on the in-process bus (``make run``), with real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from pinstack.user.v1 import events_pb2
from pinstack_common.db import Database
from pinstack_common.events import InProcessTransport, Record
from pinstack_devinfra.postgres import PostgresServer
from tests.integration.test_events_harness import (
    FlakyTransport,
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


async def _database(server: PostgresServer, prefix: str, metadata: object) -> Database:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server.ensure_database(name)
    database = Database(url=server.url(name), component=prefix, pool_size=4)
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)  # type: ignore[attr-defined]
    return database


@pytest.fixture
async def bus() -> InProcessTransport:
    return InProcessTransport(partitions=3, redelivery_delay=0.02)


@pytest.fixture
async def stack(postgres_server: PostgresServer, bus: InProcessTransport) -> AsyncIterator[Stack]:
    producer = await _database(postgres_server, "evprod", producer_metadata)
    consumer = await _database(postgres_server, "evcons", consumer_metadata)
    transport = FlakyTransport(bus)

    async def read_topic(topic: str, count: int, _timeout: float) -> list[Record]:
        return bus.records(topic)[:count]

    stack = Stack(
        producer_db=producer,
        consumer_db=consumer,
        transport=transport,
        topic=f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1",
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


async def test_transport_outage_loses_nothing_and_duplicates_nothing(stack: Stack) -> None:
    flaky = stack.transport
    assert isinstance(flaky, FlakyTransport)

    async def outage() -> None:
        flaky.down = True

    async def recover() -> None:
        flaky.down = False

    await publishing_survives_an_outage(stack, outage=outage, recover=recover)


async def test_database_outage_is_redelivered_not_dead_lettered(stack: Stack) -> None:
    await database_outage_is_not_poison(stack)


async def test_trace_context_reaches_the_consumer(stack: Stack) -> None:
    await trace_context_reaches_the_consumer(stack)


async def test_relay_publishes_right_after_commit(stack: Stack) -> None:
    await relay_publishes_right_after_commit(stack)


async def test_relay_replicas_keep_per_key_order(stack: Stack) -> None:
    await replicas_keep_per_key_order(stack)


async def test_events_of_other_types_are_acknowledged_and_ignored(stack: Stack) -> None:
    await stack.start(stack.consumer())
    await stack.start(stack.relay())
    async with stack.producer_db.transaction() as session:
        await stack.outbox.add(
            session, topic=stack.topic, key="5", message=events_pb2.UserCreated(user_id=5)
        )
    await stack.write([6], key="5")
    await stack.wait_effects([6])
    assert await stack.effect_counts() == {6: 1}
    assert stack.consumed("ignored") == 1
