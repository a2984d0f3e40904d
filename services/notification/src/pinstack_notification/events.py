"""Events the notification service publishes on ``pinstack.notification.events.v1``.

Keyed by recipient user id, so one user's notifications stay in order on one partition.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.notification.v1 import events_pb2, notification_pb2
from pinstack_common.events.outbox import Outbox
from pinstack_common.strict_json import sanitised
from pinstack_notification.repository import NotificationRecord

__all__ = ["TOPIC", "NotificationEvents", "to_proto"]

TOPIC = "pinstack.notification.events.v1"


def to_proto(record: NotificationRecord) -> notification_pb2.Notification:
    """The wire form of a stored notification (replies, events, live push alike).

    The payload is sanitised on the way out (``pinstack_common.strict_json.sanitised``): rows
    stored before payloads were read strictly may hold ``NaN`` or ``Infinity``, which are not
    JSON; they go out as ``null``. See docs/input-validation.md.
    """
    created = Timestamp()
    created.FromDatetime(record.created_at)
    return notification_pb2.Notification(
        id=record.id,
        user_id=record.user_id,
        type=record.type,
        is_read=record.is_read,
        created_at=created,
        payload_json=(sanitised(record.payload) or "") if record.payload else "",
        sender_id=record.sender_id or 0,
    )


class NotificationEvents:
    """Announces new notifications through the outbox, inside the caller's transaction."""

    def __init__(self, *, outbox: Outbox) -> None:
        self._outbox = outbox

    async def created(self, session: AsyncSession, record: NotificationRecord) -> None:
        message = events_pb2.NotificationCreated(notification=to_proto(record))
        await self._outbox.add(session, topic=TOPIC, key=str(record.user_id), message=message)
