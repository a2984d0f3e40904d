"""Composition root of the notification service: builds every collaborator and owns their lifecycle.

Events: new notifications are announced through the outbox (``pinstack.notification.events.v1``)
and an :class:`OutboxRelay` publishes them right after each commit. An :class:`EventConsumer`
(group ``notification``) applies ``FollowCreated`` and ``UserDeleted``. The transport is the one
``pinstack up`` shares (in-process), or Kafka opened from the settings.

Live pushes: a new notification goes to a Redis stream that every replica reads
(:mod:`pinstack_notification.push`); each replica hands what it reads to the streams it holds
(:mod:`pinstack_notification.broadcaster`). The push reader starts before the gRPC server and
stops after it (and after the consumer, whose last handlers may still publish).
"""

from __future__ import annotations

from functools import partial

from redis.asyncio import Redis

from pinstack.notification.v1 import notification_pb2_grpc
from pinstack_common.db.database import Database
from pinstack_common.events import EventTransport, Outbox
from pinstack_common.runtime import ServiceComponent, ServiceRuntime
from pinstack_notification.broadcaster import NotificationBroadcaster
from pinstack_notification.events import CONSUMED_TOPICS, NotificationEvents, handlers
from pinstack_notification.grpc_api import NotificationServicer
from pinstack_notification.models import outbox as outbox_table
from pinstack_notification.models import processed_events
from pinstack_notification.push import RedisPush, open_reader
from pinstack_notification.ratelimit import send_limiter
from pinstack_notification.repository import NotificationRepository
from pinstack_notification.settings import NotificationSettings
from pinstack_notification.usecases import NotificationUseCases

__all__ = ["MIGRATIONS_PACKAGE", "NotificationComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_notification"


class NotificationComponent(ServiceComponent):
    name = "notification"
    settings: NotificationSettings

    def __init__(
        self, *, settings: NotificationSettings, transport: EventTransport | None = None
    ) -> None:
        super().__init__(settings=settings, transport=transport)
        self.database: Database | None = None
        self.broadcaster = NotificationBroadcaster(queue_size=settings.stream_queue_size)
        self.use_cases: NotificationUseCases | None = None

    async def _push(self, runtime: ServiceRuntime, redis: Redis) -> RedisPush:
        reader = open_reader(self.settings.redis_url)
        runtime.on_close(reader.aclose)
        push = RedisPush(
            redis=redis,
            reader=reader,
            broadcaster=self.broadcaster,
            stream=self.settings.push_stream,
            maxlen=self.settings.push_stream_maxlen,
        )
        await push.start()
        runtime.on_close(push.stop)  # flushes pending publishes, then stops reading
        return push

    async def wire(self, runtime: ServiceRuntime) -> None:
        settings = self.settings
        self.database = runtime.database()
        redis = runtime.redis()
        outbox = Outbox(table=outbox_table)
        self.use_cases = NotificationUseCases(
            database=self.database,
            repository=NotificationRepository(),
            events=NotificationEvents(outbox=outbox, push=await self._push(runtime, redis)),
            users=runtime.user_directory(),
            limiter=send_limiter(runtime.rate_limiter(redis), limits=settings.send_rate_limit),
            max_limit=settings.feed_max_limit,
        )
        await runtime.relay(database=self.database, outbox=outbox)
        await runtime.consume(
            database=self.database,
            processed=processed_events,
            topics=CONSUMED_TOPICS,
            handlers=handlers(
                notify_follow=self.use_cases.notify_follow, forget_user=self.use_cases.forget_user
            ),
        )
        servicer = NotificationServicer(
            notifications=self.use_cases,
            broadcaster=self.broadcaster,
            verifier=runtime.token_verifier(),
        )
        await runtime.serve(
            service_name="pinstack.notification.v1.NotificationService",
            registration=partial(
                notification_pb2_grpc.add_NotificationServiceServicer_to_server, servicer
            ),
        )

    async def stop(self) -> None:
        # Ends open live streams first, so the gRPC drain does not wait out its grace period.
        self.broadcaster.close()
        await super().stop()


def create_component(
    settings: NotificationSettings | None = None, *, transport: EventTransport | None = None
) -> NotificationComponent:
    return NotificationComponent(settings=settings or NotificationSettings(), transport=transport)
