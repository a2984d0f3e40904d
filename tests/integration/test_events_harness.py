"""The event backbone's semantic scenarios, written once and run against both transports.

Each scenario gets a :class:`Stack`: a producer database (with the outbox), a consumer database
(``processed_events`` and a tiny ``effects`` table: one row per handled event, deliberately
without a unique constraint so a duplicate would show), a transport and a fresh topic.
``test_events_inprocess.py`` runs them on the in-process bus, ``tests/kafka/`` on the real broker.
This module holds no tests itself.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.user.v1 import events_pb2
from pinstack_common.db import Database
from pinstack_common.events import (
    EventConsumer,
    EventTransport,
    Outbox,
    OutboxRelay,
    PublishError,
    Record,
    outbox_table,
    processed_events_table,
)
from pinstack_common.events.consumer import DLQ_ERROR_HEADER

POISON_USER = 666
# The handler of this user fails like an unreachable database, five times, then succeeds.
FLAKY_USER = 777

producer_metadata = MetaData()
outbox = outbox_table(producer_metadata)

consumer_metadata = MetaData()
processed = processed_events_table(consumer_metadata)
effects = Table(
    "effects",
    consumer_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("trace_id", String(40), nullable=False),
)

ReadTopic = Callable[[str, int, float], Awaitable[list[Record]]]


async def eventually(
    predicate: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Stack:
    producer_db: Database
    consumer_db: Database
    transport: EventTransport
    topic: str
    read_topic: ReadTopic
    component: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    outbox: Outbox = field(default_factory=lambda: Outbox(table=outbox))
    started: list[Any] = field(default_factory=list)
    flaky_failures: int = 5

    async def write(self, user_ids: Sequence[int], *, key: str | None = None) -> None:
        """One transaction per event, as use cases do."""
        for user_id in user_ids:
            async with self.producer_db.transaction() as session:
                await self.outbox.add(
                    session,
                    topic=self.topic,
                    key=key or str(user_id),
                    message=events_pb2.UserDeleted(user_id=user_id),
                )

    def relay(self, *, transport: EventTransport | None = None, **kwargs: Any) -> OutboxRelay:
        return OutboxRelay(
            database=self.producer_db,
            outbox=self.outbox,
            transport=transport or self.transport,
            component=self.component,
            **kwargs,
        )

    def consumer(self, *, group: str = "effects", max_attempts: int = 3) -> EventConsumer:
        consumer = EventConsumer(
            transport=self.transport,
            database=self.consumer_db,
            processed=processed,
            group=f"{group}-{self.component}",
            topics=[self.topic],
            component=self.component,
            max_attempts=max_attempts,
            backoff=0.01,
            max_backoff=0.05,
        )

        async def on_deleted(message: events_pb2.UserDeleted, session: AsyncSession) -> None:
            if message.user_id == POISON_USER:
                raise ValueError("cannot handle the poison user")
            if message.user_id == FLAKY_USER and self.flaky_failures > 0:
                self.flaky_failures -= 1
                raise ConnectionRefusedError("database unreachable")
            from opentelemetry import trace

            trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
            await session.execute(
                effects.insert().values(user_id=message.user_id, kind="deleted", trace_id=trace_id)
            )

        consumer.on(events_pb2.UserDeleted, on_deleted)
        return consumer

    async def start(self, component: Any) -> Any:
        await component.start()
        self.started.append(component)
        return component

    async def stop_all(self) -> None:
        for component in reversed(self.started):
            await component.stop()
        self.started.clear()

    async def effect_counts(self) -> Counter[int]:
        async with self.consumer_db.read() as session:
            rows = (await session.execute(select(effects.c.user_id))).scalars().all()
        return Counter(rows)

    async def unpublished(self) -> int:
        async with self.producer_db.read() as session:
            count = await session.scalar(
                select(func.count()).where(outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    def consumed(self, result: str) -> float:
        return metric(
            "pinstack_events_consumed_total",
            component=self.component,
            topic=self.topic,
            result=result,
        )

    async def wait_effects(self, user_ids: Sequence[int], *, within: float = 30.0) -> None:
        async def done() -> bool:
            counts = await self.effect_counts()
            return all(counts[u] >= 1 for u in user_ids)

        await eventually(done, within=within, what=f"effects for {len(user_ids)} users")


# -- scenarios ---------------------------------------------------------------------------------


class RelayCrashError(Exception):
    pass


async def relay_crash_between_publish_and_mark(stack: Stack) -> None:
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
    await eventually(
        lambda: _ready(stack.consumed("duplicate") >= len(users)), what="the duplicates"
    )
    counts = await stack.effect_counts()
    assert counts == dict.fromkeys(users, 1)
    assert stack.consumed("handled") == len(users)


async def consumer_crash_before_commit(stack: Stack) -> None:
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
    await eventually(lambda: _ready(stack.consumed("duplicate") >= 1), what="the redelivery")
    assert await stack.effect_counts() == {7: 1}
    assert stack.consumed("handled") == 1


async def poison_message_is_dead_lettered(stack: Stack) -> None:
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


async def database_outage_is_not_poison(stack: Stack) -> None:
    """Infrastructure errors outlast the retries, yet the event is redelivered, not parked."""
    await stack.start(stack.consumer(max_attempts=2))
    await stack.start(stack.relay())
    await stack.write([FLAKY_USER, 1], key="same")
    await stack.wait_effects([FLAKY_USER, 1])
    assert await stack.effect_counts() == {FLAKY_USER: 1, 1: 1}
    assert stack.flaky_failures == 0
    assert metric("pinstack_dead_letter_total", component=stack.component, topic=stack.topic) == 0
    assert stack.consumed("retry") >= 1


async def publishing_survives_an_outage(
    stack: Stack, *, outage: Callable[[], Awaitable[None]], recover: Callable[[], Awaitable[None]]
) -> None:
    """Events written before, during and after the transport is down all arrive, once."""
    await stack.start(stack.relay(sweep_interval=0.5, max_backoff=0.5))
    await stack.start(stack.consumer())
    before, during, after = range(1, 21), range(21, 41), range(41, 61)
    await stack.write(list(before))
    await stack.wait_effects(list(before))
    await outage()
    await stack.write(list(during))
    await recover()
    await stack.write(list(after))
    everyone = [*before, *during, *after]
    await stack.wait_effects(everyone, within=90)
    await eventually(lambda: _unpublished_is_zero(stack), what="an empty outbox")
    counts = await stack.effect_counts()
    assert counts == dict.fromkeys(everyone, 1)


async def trace_context_reaches_the_consumer(stack: Stack) -> None:
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


async def relay_publishes_right_after_commit(stack: Stack) -> None:
    """The commit itself wakes the relay: no sweep is needed for the common path."""
    await stack.start(stack.relay(sweep_interval=3600))
    await stack.start(stack.consumer())
    await stack.write([1])  # the first event also warms up the consumer's group membership
    await stack.wait_effects([1])
    started = time.monotonic()
    await stack.write([2])
    await stack.wait_effects([2], within=5)
    assert time.monotonic() - started < 2.0


async def replicas_keep_per_key_order(stack: Stack) -> None:
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


async def _ready(value: bool) -> bool:
    return value


async def _unpublished_is_zero(stack: Stack) -> bool:
    return await stack.unpublished() == 0


class FlakyTransport:
    """Wraps a transport; ``down`` makes every publish fail, like an unreachable broker."""

    def __init__(self, inner: EventTransport) -> None:
        self.inner = inner
        self.name = inner.name
        self.down = False

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def publish(self, records: Sequence[Record]) -> None:
        if self.down:
            raise PublishError("broker unreachable")
        await self.inner.publish(records)

    def subscriber(self, **kwargs: Any) -> Any:
        return self.inner.subscriber(**kwargs)


class SlowTransport(FlakyTransport):
    """Publishes after a random pause of up to 30 ms."""

    async def publish(self, records: Sequence[Record]) -> None:
        await asyncio.sleep(random.uniform(0, 0.03))
        await self.inner.publish(records)
