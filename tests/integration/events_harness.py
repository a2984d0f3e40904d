"""The event backbone's test stack, for ``test_event_backbone.py`` on both transports.

A :class:`Stack` is a producer database (with the outbox), a consumer database
(``processed_events`` and a tiny ``effects`` table: one row per handled event, deliberately
without a unique constraint so a duplicate would show), a transport and a fresh topic. A
:class:`Backbone` is the transport under test (the in-process bus of ``make run`` or the real
Kafka broker): how to read a topic back, and how to take the transport down and bring it back.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Consumer
from prometheus_client import REGISTRY
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.user.v1 import events_pb2
from pinstack_common.db.database import Database
from pinstack_common.events import (
    EventConsumer,
    EventTransport,
    InProcessTransport,
    Outbox,
    OutboxRelay,
    PublishError,
    Record,
    dead_letter_topic,
    outbox_table,
    processed_events_table,
)
from pinstack_common.events.kafka import KafkaTransport, ensure_topics, record_from_message
from pinstack_devinfra.kafka import KafkaBroker
from pinstack_devinfra.postgres import PostgresServer
from tests.polling import eventually

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


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Stack:
    producer_db: Database
    consumer_db: Database
    backbone: Backbone
    transport: FlakyTransport
    topic: str
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

    async def read_topic(self, topic: str, count: int, within: float) -> list[Record]:
        return await self.backbone.read_topic(topic, count, within)


class FlakyTransport:
    """Wraps a transport; ``down`` makes every publish fail, like an unreachable broker.

    ``attempts`` counts publishes, so a test can wait until the relay has met an outage.
    """

    def __init__(self, inner: EventTransport) -> None:
        self.inner = inner
        self.name = inner.name
        self.down = False
        self.attempts = 0

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def publish(self, records: Sequence[Record]) -> None:
        self.attempts += 1
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


async def database(server: PostgresServer, prefix: str, metadata: MetaData) -> Database:
    """A fresh database with ``metadata``'s tables."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server.ensure_database(name)
    created = Database(url=server.url(name), component=prefix, pool_size=4)
    async with created.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return created


class Backbone(Protocol):
    """One transport under test."""

    transport: EventTransport

    async def create_topic(self, topic: str) -> None: ...

    async def read_topic(self, topic: str, count: int, within: float) -> list[Record]:
        """The first ``count`` records of ``topic`` (waiting up to ``within`` seconds)."""
        ...

    async def outage(self, flaky: FlakyTransport) -> None: ...

    async def recover(self, flaky: FlakyTransport) -> None: ...


class InProcessBackbone:
    """The in-process bus of ``make run``; an outage is a publish that fails."""

    def __init__(self) -> None:
        self.bus = InProcessTransport(partitions=3, redelivery_delay=0.02)
        self.transport: EventTransport = self.bus

    async def create_topic(self, topic: str) -> None:
        pass  # the bus creates topics on first use

    async def read_topic(self, topic: str, count: int, within: float) -> list[Record]:
        return self.bus.records(topic)[:count]

    async def outage(self, flaky: FlakyTransport) -> None:
        flaky.down = True

    async def recover(self, flaky: FlakyTransport) -> None:
        flaky.down = False


class KafkaBackbone:
    """The real broker; an outage stops it (the relay then meets a dead broker)."""

    def __init__(self, *, broker: KafkaBroker) -> None:
        self.broker = broker
        self.transport: EventTransport = KafkaTransport(
            bootstrap_servers=broker.bootstrap_servers, client_id="events-test",
            delivery_timeout=20.0, redelivery_delay=0.2,
        )  # fmt: skip

    async def create_topic(self, topic: str) -> None:
        await ensure_topics(
            self.broker.bootstrap_servers, [topic, dead_letter_topic(topic)], partitions=3
        )

    async def read_topic(self, topic: str, count: int, within: float) -> list[Record]:
        return await asyncio.to_thread(
            _read_kafka, self.broker.bootstrap_servers, topic, count, within
        )

    async def outage(self, flaky: FlakyTransport) -> None:
        await asyncio.to_thread(self.broker.stop)

    async def recover(self, flaky: FlakyTransport) -> None:
        await asyncio.to_thread(self.broker.start)


def _read_kafka(bootstrap: str, topic: str, count: int, within: float) -> list[Record]:
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
        # A consumer's own poll loop (its timeout is the wait), not a wait for a condition.
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            found.append(record_from_message(message))
    finally:
        consumer.close()
    return sorted(found, key=lambda r: (r.partition, r.offset))
