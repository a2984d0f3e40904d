"""The NotificationService servicer: parse the request, call one use case, map the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from pinstack.notification.v1 import notification_pb2, notification_pb2_grpc
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_notification.broadcaster import CLOSED, NotificationBroadcaster
from pinstack_notification.events import to_proto
from pinstack_notification.usecases import NotificationUseCases

__all__ = ["SUBSCRIBED_HEADER", "NotificationServicer"]

DEFAULT_LIMIT = 10
SUBSCRIBED_HEADER = "pinstack-subscribed"


@dataclass(kw_only=True, eq=False)
class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    notifications: NotificationUseCases
    broadcaster: NotificationBroadcaster
    verifier: AccessTokenVerifier

    async def GetFeed(
        self, request: notification_pb2.GetFeedRequest, context: object
    ) -> notification_pb2.GetFeedResponse:
        feed = await self.notifications.feed(
            caller=await self.verifier.verify_caller(),
            page=request.page or 1,
            limit=request.limit or DEFAULT_LIMIT,
        )
        return notification_pb2.GetFeedResponse(
            notifications=[to_proto(record) for record in feed.notifications], total=feed.total
        )

    async def GetUnreadCount(
        self, request: notification_pb2.GetUnreadCountRequest, context: object
    ) -> notification_pb2.GetUnreadCountResponse:
        count = await self.notifications.unread_count(caller=await self.verifier.verify_caller())
        return notification_pb2.GetUnreadCountResponse(count=count)

    async def GetNotification(
        self, request: notification_pb2.NotificationIdRequest, context: object
    ) -> notification_pb2.Notification:
        record = await self.notifications.get(
            caller=await self.verifier.verify_caller(), notification_id=request.id
        )
        return to_proto(record)

    async def MarkRead(
        self, request: notification_pb2.NotificationIdRequest, context: object
    ) -> notification_pb2.MarkReadResponse:
        await self.notifications.mark_read(
            caller=await self.verifier.verify_caller(), notification_id=request.id
        )
        return notification_pb2.MarkReadResponse()

    async def MarkAllRead(
        self, request: notification_pb2.MarkAllReadRequest, context: object
    ) -> notification_pb2.MarkReadResponse:
        await self.notifications.mark_all_read(caller=await self.verifier.verify_caller())
        return notification_pb2.MarkReadResponse()

    async def DeleteNotification(
        self, request: notification_pb2.NotificationIdRequest, context: object
    ) -> notification_pb2.DeleteNotificationResponse:
        await self.notifications.delete(
            caller=await self.verifier.verify_caller(), notification_id=request.id
        )
        return notification_pb2.DeleteNotificationResponse()

    async def SendNotification(
        self, request: notification_pb2.SendNotificationRequest, context: object
    ) -> notification_pb2.SendNotificationResponse:
        record = await self.notifications.send(
            caller=await self.verifier.verify_caller(),
            user_id=request.user_id,
            type=request.type,
            payload_json=request.payload_json,
        )
        return notification_pb2.SendNotificationResponse(notification_id=record.id)

    async def StreamNotifications(
        self,
        request: notification_pb2.StreamNotificationsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[notification_pb2.Notification]:
        caller = await self.verifier.verify_caller()
        async with self.broadcaster.subscribe(caller.user_id) as queue:
            # Tells the client the subscription is live: nothing created from now on is missed
            # (the push reader's position was fixed before this server started serving).
            await context.send_initial_metadata(((SUBSCRIBED_HEADER, "1"),))
            while (notification := await queue.get()) is not CLOSED:
                yield notification
