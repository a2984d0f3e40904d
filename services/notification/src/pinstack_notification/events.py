"""The notification service's events: what it announces and what it consumes.

Announces new notifications on ``pinstack.notification.events.v1``, keyed by recipient user id
(one user's notifications stay in order on one partition), and pushes each to live streams once
its transaction commits. Consumes ``FollowCreated`` (the followee is told) and ``UserDeleted``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.notification.v1 import events_pb2, notification_pb2
from pinstack.relation.v1.events_pb2 import FollowCreated
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_common.events.consumer import current_event
from pinstack_common.events.outbox import Outbox
from pinstack_common.events.topics import NOTIFICATION_EVENTS, RELATION_EVENTS, USER_EVENTS
from pinstack_common.runtime import EventHandlers
from pinstack_common.strict_json import sanitised
from pinstack_common.timestamps import to_timestamp
from pinstack_notification.metrics import NOTIFICATIONS_CREATED
from pinstack_notification.push import PushPublisher
from pinstack_notification.repository import NotificationRecord

__all__ = ["CONSUMED_TOPICS", "FollowNotifier", "NotificationEvents", "handlers", "to_proto"]

CONSUMED_TOPICS = (RELATION_EVENTS, USER_EVENTS)


def to_proto(record: NotificationRecord) -> notification_pb2.Notification:
    """The wire form of a stored notification (replies, events, live push alike).

    The payload is sanitised on the way out (``pinstack_common.strict_json.sanitised``): rows
    stored before payloads were read strictly may hold ``NaN`` or ``Infinity``, which are not
    JSON; they go out as ``null``. See docs/input-validation.md.
    """
    return notification_pb2.Notification(
        id=record.id,
        user_id=record.user_id,
        type=record.type,
        is_read=record.is_read,
        created_at=to_timestamp(record.created_at),
        payload_json=(sanitised(record.payload) or "") if record.payload else "",
        sender_id=record.sender_id or 0,
    )


@dataclass(kw_only=True, eq=False)
class NotificationEvents:
    """Announces new notifications through the outbox, inside the caller's transaction."""

    outbox: Outbox
    push: PushPublisher

    async def created(self, session: AsyncSession, record: NotificationRecord) -> None:
        message = events_pb2.NotificationCreated(notification=to_proto(record))
        await self.outbox.add(
            session, topic=NOTIFICATION_EVENTS, key=str(record.user_id), message=message
        )
        # Pushed only after the commit: a socket must never show what the feed lacks. The push
        # goes to every replica's streams through Redis (pinstack_notification.push), this
        # replica's included: nothing is delivered locally from here.
        _after_commit(session, partial(self._announce, record))

    def _announce(self, record: NotificationRecord) -> None:
        NOTIFICATIONS_CREATED.inc()
        self.push.publish(to_proto(record))


def _after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    def fire(_session: object) -> None:
        callback()

    # Fires for the real COMMIT of the outermost transaction only; never after a rollback.
    event.listen(session.sync_session, "after_commit", fire, once=True)


class FollowNotifier(Protocol):
    def __call__(
        self, *, follower_id: int, followee_id: int, event_key: str, session: AsyncSession | None
    ) -> Awaitable[None]: ...


def handlers(
    *,
    notify_follow: FollowNotifier,
    forget_user: Callable[[int, AsyncSession], Awaitable[object]],
) -> EventHandlers:
    """The consumed events, each mapped onto the use case it triggers."""

    async def on_follow_created(event: FollowCreated, session: AsyncSession) -> None:
        # The event id when a consumer delivers it; outside one, the event itself (a later
        # re-follow has a later ``occurred_at``).
        envelope = current_event.get()
        stamp = event.occurred_at
        key = (
            str(envelope.event_id)
            if envelope is not None
            else f"{event.follower_id}:{event.followee_id}:{stamp.seconds}.{stamp.nanos}"
        )
        await notify_follow(
            follower_id=event.follower_id,
            followee_id=event.followee_id,
            event_key=key,
            session=session,
        )

    async def on_user_deleted(event: UserDeleted, session: AsyncSession) -> None:
        await forget_user(event.user_id, session)

    return {FollowCreated: on_follow_created, UserDeleted: on_user_deleted}
