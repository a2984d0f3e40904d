"""The event backbone's scenarios, run on both transports with real PostgreSQL.

Every test runs on the in-process bus (``make run``) and on the real Kafka broker (``dev up``,
Kubernetes): the ``stack`` fixture is parametrized over the two, the Kafka case marked ``kafka``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from pinstack.user.v1 import events_pb2
from pinstack_common.events import Record
from pinstack_common.events.consumer import DLQ_ERROR_HEADER
from pinstack_devinfra.postgres import PostgresServer
from tests.integration.events_harness import (
    FLAKY_USER,
    POISON_USER,
    Backbone,
    FlakyTransport,
    InProcessBackbone,
    KafkaBackbone,
    SlowTransport,
    Stack,
    consumer_metadata,
    database,
    effects,
    metric,
    producer_metadata,
)
from tests.polling import eventually


@pytest.fixture(params=["inprocess", pytest.param("kafka", marks=pytest.mark.kafka)])
def backbone(request: pytest.FixtureRequest) -> Backbone:
    if request.param == "kafka":
        return KafkaBackbone(broker=request.getfixturevalue("kafka_broker"))
    return InProcessBackbone()


@pytest.fixture
async def stack(postgres_server: PostgresServer, backbone: Backbone) -> AsyncIterator[Stack]:
    topic = f"pinstack.t{uuid.uuid4().hex[:8]}.events.v1"
    await backbone.create_topic(topic)
    producer = await database(postgres_server, "evprod", producer_metadata)
    consumer = await database(postgres_server, "evcons", consumer_metadata)
    transport = FlakyTransport(backbone.transport)
    stack = Stack(
        producer_db=producer,
        consumer_db=consumer,
        backbone=backbone,
        transport=transport,
        topic=topic,
    )
    await transport.start()
    try:
        yield stack
    finally:
        await stack.stop_all()
        await transport.stop()
        await producer.close()
        await consumer.close()


class RelayCrashError(Exception):
    pass


async def test_relay_crash_between_publish_and_mark_handles_once(stack: Stack) -> None:
    users = [1, 2, 3, 4, 5]
    await stack.write(users)
    crashing = stack.relay()

    async def crash(*_: Any) -> None:
        raise RelayCrashError("died after publishing, before marking")

    crashing._mark_published = crash  # type: ignore[method-assign,assignment]
    try:
        await crashing.publish_batch()
    except RelayCrashError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the crashing relay did not crash")
    assert await stack.unpublished() == len(users)

    # A restarted relay publishes the same rows again: every event is on the topic twice.
    await stack.relay().drain()
    assert await stack.unpublished() == 0
    await stack.start(stack.consumer())
    await stack.wait_effects(users)
    await eventually(lambda: stack.consumed("duplicate") >= len(users), what="the duplicates")
    counts = await stack.effect_counts()
    assert counts == dict.fromkeys(users, 1)
    assert stack.consumed("handled") == len(users)


async def test_consumer_crash_before_commit_redelivers_and_dedupes(stack: Stack) -> None:
    first = stack.consumer()
    real_handle = first.handle
    crashed = asyncio.Event()

    async def handle_then_crash(record: Record) -> None:
        await real_handle(record)  # the database transaction commits...
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("...and the process dies before the offset commit")

    first.handle = handle_then_crash  # type: ignore[method-assign]
    await first.start()
    await stack.write([7])
    await stack.relay().drain()
    await asyncio.wait_for(crashed.wait(), 30)
    await first.stop()  # the dead member leaves; its offset was never committed

    # The same group, a new member: the event is delivered again and deduplicated.
    await stack.start(stack.consumer())
    await eventually(lambda: stack.consumed("duplicate") >= 1, what="the redelivery")
    assert await stack.effect_counts() == {7: 1}
    assert stack.consumed("handled") == 1


async def test_poison_message_goes_to_dead_letter_without_blocking(stack: Stack) -> None:
    await stack.start(stack.consumer(max_attempts=3))
    key = "42"
    # A handler that always fails, then a payload that cannot be decoded, then good events:
    # all on one key, so all on one partition, in this order.
    await stack.write([POISON_USER], key=key)
    await stack.relay().drain()
    garbage = Record(
        topic=stack.topic,
        key=key.encode(),
        value=b"\xff\xff\xff not protobuf",
        headers=(
            ("pinstack-event-id", str(uuid.uuid4()).encode()),
            ("pinstack-event-type", b"pinstack.user.v1.UserDeleted"),
        ),
    )
    no_envelope = Record(topic=stack.topic, key=key.encode(), value=b"x", headers=())
    await stack.transport.publish([garbage, no_envelope])
    await stack.write([100, 101, 102], key=key)
    await stack.relay().drain()

    await stack.wait_effects([100, 101, 102])
    parked = await stack.read_topic(stack.topic + ".dlq", 3, 30.0)
    assert len(parked) == 3
    errors = [record.header(DLQ_ERROR_HEADER) or "" for record in parked]
    assert "cannot handle the poison user" in errors[0]
    assert "DecodeError" in errors[1]
    assert "MalformedEventError" in errors[2]
    assert parked[1].value == garbage.value
    assert (await stack.effect_counts()) == {100: 1, 101: 1, 102: 1}
    assert metric("pinstack_dead_letter_total", component=stack.component, topic=stack.topic) == 3


async def test_database_outage_is_redelivered_not_dead_lettered(stack: Stack) -> None:
    """Infrastructure errors outlast the retries, yet the event is redelivered, not parked."""
    await stack.start(stack.consumer(max_attempts=2))
    await stack.start(stack.relay())
    await stack.write([FLAKY_USER, 1], key="same")
    await stack.wait_effects([FLAKY_USER, 1])
    assert await stack.effect_counts() == {FLAKY_USER: 1, 1: 1}
    assert stack.flaky_failures == 0
    assert metric("pinstack_dead_letter_total", component=stack.component, topic=stack.topic) == 0
    assert stack.consumed("retry") >= 1


async def test_transport_outage_loses_nothing_and_duplicates_nothing(stack: Stack) -> None:
    """Events written before, during and after the transport is down all arrive, once.

    On Kafka the broker itself is stopped and restarted.
    """
    await stack.start(stack.relay(sweep_interval=0.5, max_backoff=0.5))
    await stack.start(stack.consumer())
    before, during, after = range(1, 21), range(21, 41), range(41, 61)
    await stack.write(list(before))
    await stack.wait_effects(list(before))
    await stack.backbone.outage(stack.transport)
    attempts = stack.transport.attempts
    await stack.write(list(during))
    await eventually(
        lambda: stack.transport.attempts > attempts, what="the relay to meet the outage"
    )
    await stack.backbone.recover(stack.transport)
    await stack.write(list(after))
    everyone = [*before, *during, *after]
    await stack.wait_effects(everyone, within=90)
    await eventually(lambda: _unpublished_is_zero(stack), what="an empty outbox")
    counts = await stack.effect_counts()
    assert counts == dict.fromkeys(everyone, 1)


async def test_trace_context_reaches_the_consumer(stack: Stack) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        await stack.write([9])
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace.get_current_span().get_span_context().is_valid is False
    await stack.start(stack.relay())
    await stack.start(stack.consumer())
    await stack.wait_effects([9])
    async with stack.consumer_db.read() as session:
        seen = await session.scalar(select(effects.c.trace_id).where(effects.c.user_id == 9))
    assert seen == trace_id


async def test_relay_publishes_right_after_commit(stack: Stack) -> None:
    """The commit itself wakes the relay: no sweep is needed for the common path."""
    await stack.start(stack.relay(sweep_interval=3600))
    await stack.start(stack.consumer())
    await stack.write([1])  # the first event also warms up the consumer's group membership
    await stack.wait_effects([1])
    started = time.monotonic()
    await stack.write([2])
    await stack.wait_effects([2], within=5)
    assert time.monotonic() - started < 2.0


async def test_relay_replicas_keep_per_key_order(stack: Stack) -> None:
    """Three relays race over one outbox while writers commit: each key stays in order."""
    keys, per_key = 5, 40
    # Publishing takes a random while (as a broker's acknowledgement does), so a relay that
    # locked later rows of a key often finishes before the one holding the earlier rows.
    slow = SlowTransport(stack.transport)
    for _ in range(3):
        await stack.start(stack.relay(transport=slow, batch_size=7, sweep_interval=0.2))
    await stack.start(stack.consumer())

    async def writer(key: int) -> None:
        await stack.write([key * 1000 + i for i in range(per_key)], key=f"k{key}")

    await asyncio.gather(*(writer(k) for k in range(keys)))
    everyone = [k * 1000 + i for k in range(keys) for i in range(per_key)]
    await stack.wait_effects(everyone, within=60)
    async with stack.consumer_db.read() as session:
        handled = (await session.execute(select(effects.c.user_id).order_by(effects.c.id))).all()
    order = [row.user_id for row in handled]
    assert len(order) == len(everyone)
    for key in range(keys):
        mine = [u for u in order if u // 1000 == key]
        assert mine == sorted(mine), f"key k{key} out of order"


async def _unpublished_is_zero(stack: Stack) -> bool:
    return await stack.unpublished() == 0


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
