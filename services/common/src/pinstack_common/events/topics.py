"""The event topics, one definition each: producers, consumers, provisioning and tests use these.

A domain publishes every event type it owns on one topic, ``pinstack.<domain>.events.v1``
(:func:`~pinstack_common.events.envelope.topic_for`); a consumer subscribes by importing the
producer's constant, never by spelling the name again.
"""

from __future__ import annotations

from pinstack_common.events.envelope import topic_for

__all__ = ["ALL_TOPICS", "NOTIFICATION_EVENTS", "POST_EVENTS", "RELATION_EVENTS", "USER_EVENTS"]

USER_EVENTS = topic_for("user")
POST_EVENTS = topic_for("post")
RELATION_EVENTS = topic_for("relation")
NOTIFICATION_EVENTS = topic_for("notification")
# Every topic a stack carries (each with its dead-letter twin, see ``dead_letter_topic``).
ALL_TOPICS = (USER_EVENTS, POST_EVENTS, RELATION_EVENTS, NOTIFICATION_EVENTS)
