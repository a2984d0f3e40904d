"""What travels on a topic: the transport-neutral record and the domain event envelope.

A :class:`Record` is what a transport moves (topic, key, value, headers), the same shape for
Kafka and for the in-process bus. An :class:`Envelope` is a domain event inside a record: the
value is the protobuf payload; the event id, the event type (protobuf full name), the W3C trace
context and the request id travel in headers, so a consumer (or a person reading a dead-letter
topic) can route, dedupe and trace an event without decoding its payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import propagate

from pinstack_common.observability.logging import REQUEST_ID_HEADER, current_request_id

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "REQUEST_ID_HEADER",
    "Envelope",
    "MalformedEventError",
    "Record",
    "capture_context",
    "dead_letter_topic",
    "topic_for",
]

EVENT_ID_HEADER = "pinstack-event-id"
EVENT_TYPE_HEADER = "pinstack-event-type"
DEAD_LETTER_SUFFIX = ".dlq"


def topic_for(domain: str) -> str:
    """The topic a domain publishes on: ``pinstack.<domain>.events.v1``."""
    return f"pinstack.{domain}.events.v1"


def dead_letter_topic(topic: str) -> str:
    """Where a consumer parks messages of ``topic`` it cannot handle."""
    return topic + DEAD_LETTER_SUFFIX


@dataclass(frozen=True, slots=True)
class Record:
    """One message as a transport sees it. ``partition``/``offset`` are set on delivery only."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int = -1
    offset: int = -1

    def header(self, name: str) -> str | None:
        """The last value of header ``name``, decoded, or ``None``."""
        found: str | None = None
        for key, value in self.headers:
            if key == name:
                found = value.decode("utf-8", errors="replace")
        return found


class MalformedEventError(ValueError):
    """A record without a usable event id or type: it goes to the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A domain event: identity, routing and context around a protobuf payload."""

    event_id: uuid.UUID
    topic: str
    key: str
    event_type: str
    payload: bytes
    # Context captured when the event was written: traceparent/tracestate, x-request-id.
    context: Mapping[str, str] = field(default_factory=dict)

    def to_record(self) -> Record:
        headers = [
            (EVENT_ID_HEADER, str(self.event_id).encode()),
            (EVENT_TYPE_HEADER, self.event_type.encode()),
        ]
        headers += [(name, value.encode()) for name, value in sorted(self.context.items())]
        return Record(
            topic=self.topic, key=self.key.encode(), value=self.payload, headers=tuple(headers)
        )

    @classmethod
    def from_record(cls, record: Record) -> Envelope:
        raw_id = record.header(EVENT_ID_HEADER)
        event_type = record.header(EVENT_TYPE_HEADER)
        if raw_id is None or not event_type:
            raise MalformedEventError("missing event id or event type header")
        try:
            event_id = uuid.UUID(raw_id)
        except ValueError as exc:
            raise MalformedEventError(f"bad event id {raw_id!r}") from exc
        context = {
            name: value.decode("utf-8", errors="replace")
            for name, value in record.headers
            if name not in (EVENT_ID_HEADER, EVENT_TYPE_HEADER)
        }
        return cls(
            event_id=event_id,
            topic=record.topic,
            key=(record.key or b"").decode("utf-8", errors="replace"),
            event_type=event_type,
            payload=record.value or b"",
            context=context,
        )


def capture_context() -> dict[str, str]:
    """The current trace context (W3C ``traceparent``) and request id, as header values.

    Called when an outbox row is written, so the event continues the trace of the request that
    caused it even though the relay publishes it later, from another task.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    request_id = current_request_id()
    if request_id:
        carrier[REQUEST_ID_HEADER] = request_id
    return carrier
