"""Protobuf ``Timestamp`` ↔ ``datetime``: the one conversion every servicer and event uses.

Datetimes are timezone-aware UTC on both sides; a ``Timestamp`` keeps microseconds exactly, so a
round trip through the wire loses nothing PostgreSQL stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["from_timestamp", "now_timestamp", "to_timestamp"]


def to_timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def now_timestamp() -> Timestamp:
    """The current time: an event's ``occurred_at``."""
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp
