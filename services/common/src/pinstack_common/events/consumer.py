"""Idempotent event consumers: dedupe on the event id, retry with backoff, dead-letter poison.

A service registers one handler per event type; each handler runs in a transaction of the
service's own database that also records the event id in ``processed_events``. The two commit
together, so an event redelivered after a crash (before the offset commit, or after a relay
published it twice) finds its id and is skipped: the effect happens once.

A handler that keeps failing is retried ``max_attempts`` times with exponential backoff; then
the raw record is parked on ``<topic>.dlq`` with the error in its headers, and the partition
moves on. Failures of the infrastructure itself (the database unreachable) are not the
message's fault: they are re-raised to the transport, which redelivers later instead of
dead-lettering every event that arrives during an outage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from google.protobuf.message import DecodeError, Message
from opentelemetry import propagate, trace
from sqlalchemy import Column, DateTime, MetaData, String, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from pinstack_common.db.database import Database
from pinstack_common.events.envelope import (
    REQUEST_ID_HEADER,
    Envelope,
    MalformedEventError,
    Record,
    dead_letter_topic,
)
from pinstack_common.events.transport import EventTransport, Subscriber
from pinstack_common.observability.metrics import DEAD_LETTERS, EVENTS_CONSUMED

__all__ = [
    "DLQ_ATTEMPTS_HEADER",
    "DLQ_CONSUMER_HEADER",
    "DLQ_ERROR_HEADER",
    "DLQ_ORIGIN_HEADER",
    "EventConsumer",
    "current_event",
    "processed_events_table",
]

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("pinstack.events")

M = TypeVar("M", bound=Message)
Handler = Callable[[Any, AsyncSession], Awaitable[None]]

DLQ_ERROR_HEADER = "pinstack-dlq-error"
DLQ_CONSUMER_HEADER = "pinstack-dlq-consumer"
DLQ_ATTEMPTS_HEADER = "pinstack-dlq-attempts"
DLQ_ORIGIN_HEADER = "pinstack-dlq-origin"  # "<topic>/<partition>/<offset>"

# Errors that mean "the infrastructure is down", not "this message is bad".
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


def _is_transient(error: BaseException) -> bool:
    # A connection dropped mid-statement surfaces as a DBAPIError flagged as invalidated.
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _TRANSIENT)


# The envelope being handled, for handlers that need its id, key or context.
current_event: ContextVar[Envelope | None] = ContextVar("current_event", default=None)


def processed_events_table(metadata: MetaData) -> Table:
    """The dedupe table every consuming service adds to its metadata and first migration."""
    return Table(
        "processed_events",
        metadata,
        # One service may run several groups; each must see every event once.
        Column("consumer", String(255), primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("event_type", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


class _Poison(Exception):  # noqa: N818 - internal marker, never escapes
    """A record that can never be handled (bad envelope or payload): straight to the DLQ."""


@dataclass(kw_only=True, eq=False)
class EventConsumer:
    """One consumer group of one service: a lifecycle component.

    ``on(UserDeleted, handler)`` registers ``handler(message, session)``; events of types
    without a handler are acknowledged and ignored (a topic carries several types).
    """

    transport: EventTransport
    database: Database
    processed: Table
    group: str
    topics: Sequence[str]
    component: str
    max_attempts: int = 5
    backoff: float = 0.1
    max_backoff: float = 5.0
    name: str = field(init=False)
    _handlers: dict[str, tuple[type[Message], Handler]] = field(default_factory=dict, init=False)
    _subscriber: Subscriber | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.name = f"{self.group}-consumer"
        self.topics = list(self.topics)  # the caller's sequence may change later

    def on(
        self, message_type: type[M], handler: Callable[[M, AsyncSession], Awaitable[None]]
    ) -> None:
        full_name = message_type.DESCRIPTOR.full_name
        if full_name in self._handlers:
            raise ValueError(f"{self.group}: a handler for {full_name} is already registered")
        self._handlers[full_name] = (message_type, handler)

    async def start(self) -> None:
        self._subscriber = self.transport.subscriber(
            group=self.group, topics=self.topics, handler=self.handle, component=self.component
        )
        await self._subscriber.start()

    async def stop(self) -> None:
        if self._subscriber is not None:
            await self._subscriber.stop()
            self._subscriber = None

    async def handle(self, record: Record) -> None:
        """The transport's record handler: returns once the record may be committed."""
        try:
            envelope, message, handler = self._decode(record)
        except _Poison as exc:
            await self._dead_letter(record, exc.__cause__ or exc, attempts=0)
            return
        if handler is None or message is None:
            EVENTS_CONSUMED.labels(self.component, record.topic, "ignored").inc()
            return
        parent = propagate.extract(dict(envelope.context))
        request_id = envelope.context.get(REQUEST_ID_HEADER)
        token = current_event.set(envelope)
        try:
            with (
                structlog.contextvars.bound_contextvars(
                    request_id=request_id, event_id=str(envelope.event_id)
                ),
                tracer.start_as_current_span(
                    f"{record.topic} process",
                    context=parent,
                    kind=trace.SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": record.topic,
                        "messaging.message.id": str(envelope.event_id),
                        "messaging.consumer.group.name": self.group,
                        "pinstack.event_type": envelope.event_type,
                    },
                ),
            ):
                await self._handle_with_retries(record, envelope, message, handler)
        finally:
            current_event.reset(token)

    def _decode(self, record: Record) -> tuple[Envelope, Message | None, Handler | None]:
        try:
            envelope = Envelope.from_record(record)
        except MalformedEventError as exc:
            raise _Poison from exc
        entry = self._handlers.get(envelope.event_type)
        if entry is None:
            return envelope, None, None
        message_type, handler = entry
        try:
            message = message_type.FromString(envelope.payload)
        except DecodeError as exc:
            raise _Poison from exc
        return envelope, message, handler

    async def _handle_with_retries(
        self, record: Record, envelope: Envelope, message: Message, handler: Handler
    ) -> None:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    handled = await self._apply(envelope, message, handler)
        except Exception as exc:
            if _is_transient(exc):
                # Not the message's fault: let the transport redeliver it once things recover.
                EVENTS_CONSUMED.labels(self.component, record.topic, "retry").inc()
                raise
            log.warning("handler failed; dead-lettering", attempts=attempts, exc_info=True)
            await self._dead_letter(record, exc, attempts=attempts)
            return
        result = "handled" if handled else "duplicate"
        EVENTS_CONSUMED.labels(self.component, record.topic, result).inc()

    async def _apply(self, envelope: Envelope, message: Message, handler: Handler) -> bool:
        """Run ``handler`` once in a transaction that records the event id; False if seen."""
        async with self.database.transaction() as session:
            claimed = await session.execute(
                insert(self.processed)
                .values(
                    consumer=self.group,
                    event_id=envelope.event_id,
                    event_type=envelope.event_type,
                    processed_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing()
                .returning(self.processed.c.event_id)
            )
            if claimed.first() is None:
                return False
            await handler(message, session)
        return True

    async def _dead_letter(self, record: Record, error: BaseException, *, attempts: int) -> None:
        reason = f"{type(error).__name__}: {error}"[:1000]
        headers = (
            *record.headers,
            (DLQ_ERROR_HEADER, reason.encode()),
            (DLQ_CONSUMER_HEADER, self.group.encode()),
            (DLQ_ATTEMPTS_HEADER, str(attempts).encode()),
            (DLQ_ORIGIN_HEADER, f"{record.topic}/{record.partition}/{record.offset}".encode()),
        )
        target = dead_letter_topic(record.topic)
        # If this publish fails, the record is not committed and comes back: nothing is lost.
        await self.transport.publish(
            [Record(topic=target, key=record.key, value=record.value, headers=headers)]
        )
        DEAD_LETTERS.labels(self.component, record.topic).inc()
        EVENTS_CONSUMED.labels(self.component, record.topic, "dead_lettered").inc()
        log.error("event parked on the dead-letter topic", topic=target, error=reason,
                  offset=record.offset, partition=record.partition)  # fmt: skip
