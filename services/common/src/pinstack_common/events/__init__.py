"""Domain events: the transactional outbox, its relay, transports and idempotent consumers.

Producer side: ``Outbox.add(session, topic=..., key=..., message=...)`` inside the use case's
transaction; an ``OutboxRelay`` publishes committed rows at once. Consumer side: an
``EventConsumer`` with ``on(EventType, handler)``. Both run over an ``EventTransport``:
``KafkaTransport`` (distributed, Kubernetes) or ``InProcessTransport`` (``make run``), chosen at
the composition root. See ``docs/events.md``.
"""

from pinstack_common.events.consumer import EventConsumer, current_event, processed_events_table
from pinstack_common.events.envelope import (
    Envelope,
    MalformedEventError,
    Record,
    dead_letter_topic,
    topic_for,
)
from pinstack_common.events.outbox import Outbox, outbox_table
from pinstack_common.events.relay import OutboxRelay
from pinstack_common.events.topics import (
    ALL_TOPICS,
    NOTIFICATION_EVENTS,
    POST_EVENTS,
    RELATION_EVENTS,
    USER_EVENTS,
)
from pinstack_common.events.transport import (
    EventTransport,
    InProcessTransport,
    PublishError,
    Subscriber,
)

__all__ = [
    "ALL_TOPICS",
    "NOTIFICATION_EVENTS",
    "POST_EVENTS",
    "RELATION_EVENTS",
    "USER_EVENTS",
    "Envelope",
    "EventConsumer",
    "EventTransport",
    "InProcessTransport",
    "MalformedEventError",
    "Outbox",
    "OutboxRelay",
    "PublishError",
    "Record",
    "Subscriber",
    "current_event",
    "dead_letter_topic",
    "outbox_table",
    "processed_events_table",
    "topic_for",
]
