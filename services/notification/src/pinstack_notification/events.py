"""Events the notification service publishes on ``pinstack.notification.events.v1``.

Keyed by recipient user id, so one user's notifications stay in order on one partition.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.notification.v1 import events_pb2, notification_pb2
from pinstack_common.events.outbox import Outbox
from pinstack_notification.repository import NotificationRecord

__all__ = ["TOPIC", "NotificationEvents", "to_proto"]

TOPIC = "pinstack.notification.events.v1"


def to_proto(record: NotificationRecord) -> notification_pb2.Notification:
    created = Timestamp()
    created.FromDatetime(record.created_at)
    return notification_pb2.Notification(
        id=record.id,
        user_id=record.user_id,
        type=record.type,
        is_read=record.is_read,
        created_at=created,
        payload_json=record.payload or "",
    )


class NotificationEvents:
    """Announces new notifications through the outbox, inside the caller's transaction."""

    def __init__(self, *, outbox: Outbox) -> None:
        self._outbox = outbox

    async def created(self, session: AsyncSession, record: NotificationRecord) -> None:
        message = events_pb2.NotificationCreated(notification=to_proto(record))
        await self._outbox.add(session, topic=TOPIC, key=str(record.user_id), message=message)
