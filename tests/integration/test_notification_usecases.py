"""Notification use cases against real PostgreSQL and Redis (no gRPC, a fake user directory)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.notification.v1 import events_pb2
from pinstack.notification.v1.notification_pb2 import Notification
from pinstack.relation.v1.events_pb2 import FollowCreated
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_common.cache import open_redis
from pinstack_common.db.database import Database
from pinstack_common.db.migrations import upgrade
from pinstack_common.errors import (
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
)
from pinstack_common.events.outbox import Outbox
from pinstack_common.security.ratelimit import moving_window
from pinstack_common.security.tokens import Identity
from pinstack_devinfra.postgres import PostgresServer
from pinstack_devinfra.redis import RedisServer
from pinstack_notification.app import MIGRATIONS_PACKAGE
from pinstack_notification.events import NotificationEvents, handlers, to_proto
from pinstack_notification.models import outbox
from pinstack_notification.ratelimit import DisabledSendLimiter, SendLimiter, send_limiter
from pinstack_notification.repository import NotificationRepository
from pinstack_notification.usecases import NotificationUseCases
from tests.conftest import new_database


class KnownUsers:
    def __init__(self, *ids: int) -> None:
        self.ids = set(ids)

    async def exists(self, user_id: int) -> bool:
        return user_id in self.ids


class RecordingPush:
    """What the use cases hand to the push path (tested on real Redis in test_notification_push)."""

    def __init__(self) -> None:
        self.published: list[Notification] = []

    def publish(self, notification: Notification) -> None:
        self.published.append(notification)


def me(user_id: int) -> Identity:
    return Identity(user_id=user_id, session_id="s")


@pytest.fixture(scope="module")
def notification_url(postgres_server: PostgresServer) -> str:
    url = new_database(postgres_server, "notification")
    upgrade(package=MIGRATIONS_PACKAGE, url=url)
    return url


@pytest.fixture
async def database(notification_url: str) -> AsyncIterator[Database]:
    database = Database(url=notification_url, component="test")
    yield database
    await database.close()


def build(
    database: Database, *, limiter: SendLimiter | None = None
) -> tuple[NotificationUseCases, RecordingPush]:
    push = RecordingPush()
    use_cases = NotificationUseCases(
        database=database,
        repository=NotificationRepository(),
        events=NotificationEvents(outbox=Outbox(table=outbox), push=push),
        users=KnownUsers(1, 2, 3),
        limiter=limiter or DisabledSendLimiter(),
    )
    return use_cases, push


async def deliver(
    database: Database,
    use_cases: NotificationUseCases,
    event: FollowCreated | UserDeleted,
    session: AsyncSession | None = None,
) -> None:
    """Hand ``event`` to the service's handler as the consumer would, in ``session`` or a new
    transaction (outside a consumer: no envelope, so the event itself is the dedupe key)."""
    handle = handlers(notify_follow=use_cases.notify_follow, forget_user=use_cases.forget_user)[
        type(event)
    ]
    if session is not None:
        await handle(event, session)
        return
    async with database.transaction() as own:
        await handle(event, own)


def follow_event(follower: int, followee: int) -> FollowCreated:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return FollowCreated(follower_id=follower, followee_id=followee, occurred_at=stamp)


async def outbox_events(database: Database, user_id: int) -> list[events_pb2.NotificationCreated]:
    async with database.read() as session:
        rows = await session.execute(
            select(outbox.c.payload).where(outbox.c.key == str(user_id)).order_by(outbox.c.seq)
        )
        return [events_pb2.NotificationCreated.FromString(row[0]) for row in rows]


async def test_follow_created_is_idempotent_and_announced(database: Database) -> None:
    use_cases, push = build(database)
    recipient = 1000 + uuid.uuid4().int % 10**6
    event = follow_event(7, recipient)
    await deliver(database, use_cases, event)
    await deliver(database, use_cases, event)  # redelivered
    (pushed,) = push.published
    feed = await use_cases.feed(caller=me(recipient), page=1, limit=10)
    assert feed.total == 1
    (item,) = feed.notifications
    assert item.type == "follow_created"
    assert item.payload == f'{{"follower_id": 7, "followee_id": {recipient}}}'
    assert pushed == to_proto(item)
    (announced,) = await outbox_events(database, recipient)
    assert announced.notification.id == item.id
    # A later follow (after an unfollow) is a new event and notifies again.
    await deliver(database, use_cases, follow_event(7, recipient))
    assert (await use_cases.unread_count(caller=me(recipient))) == 2


async def test_pushed_only_after_commit_never_after_rollback(database: Database) -> None:
    use_cases, push = build(database)
    recipient = 5000 + uuid.uuid4().int % 10**6

    async def create_then_fail() -> None:
        async with database.transaction() as session:
            await deliver(database, use_cases, follow_event(8, recipient), session)
            assert push.published == []  # not before the commit
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await create_then_fail()
    assert push.published == []
    async with database.transaction() as session:
        await deliver(database, use_cases, follow_event(8, recipient), session)
    assert [n.user_id for n in push.published] == [recipient]


async def test_ownership_and_lifecycle(database: Database) -> None:
    use_cases, _ = build(database)
    record = await use_cases.send(caller=me(1), user_id=2, type="hello", payload_json="[1]")
    with pytest.raises(ForbiddenError, match="access to notification denied"):
        await use_cases.get(caller=me(1), notification_id=record.id)
    with pytest.raises(ForbiddenError):
        await use_cases.delete(caller=me(3), notification_id=record.id)
    await use_cases.mark_read(caller=me(2), notification_id=record.id)
    await use_cases.mark_read(caller=me(2), notification_id=record.id)
    assert (await use_cases.get(caller=me(2), notification_id=record.id)).is_read
    await use_cases.delete(caller=me(2), notification_id=record.id)
    with pytest.raises(NotFoundError, match="notification not found"):
        await use_cases.delete(caller=me(2), notification_id=record.id)


async def test_send_validation(database: Database) -> None:
    use_cases, _ = build(database)
    with pytest.raises(NotFoundError, match="user not found"):
        await use_cases.send(caller=me(1), user_id=999_999, type="x", payload_json="")
    for bad in ("", " ", "x" * 65):
        with pytest.raises(InvalidArgumentError, match="validation failed"):
            await use_cases.send(caller=me(1), user_id=2, type=bad, payload_json="")
    with pytest.raises(InvalidArgumentError):
        await use_cases.send(caller=me(1), user_id=2, type="x", payload_json="{nope")
    with pytest.raises(InvalidArgumentError, match="invalid input"):
        await use_cases.feed(caller=me(1), page=0, limit=10)
    with pytest.raises(InvalidArgumentError, match="invalid input"):
        await use_cases.feed(caller=me(1), page=1, limit=101)


async def test_forget_user_deletes_only_theirs(database: Database) -> None:
    use_cases, _ = build(database)
    gone, kept = 2000 + uuid.uuid4().int % 10**6, 3
    await deliver(database, use_cases, follow_event(1, gone))
    await deliver(database, use_cases, follow_event(1, kept))
    await deliver(database, use_cases, UserDeleted(user_id=gone))
    assert (await use_cases.feed(caller=me(gone), page=1, limit=10)).total == 0
    assert (await use_cases.feed(caller=me(kept), page=1, limit=10)).total >= 1
    assert await use_cases.forget_user(gone) == 0  # idempotent


async def test_send_is_rate_limited_per_caller(
    database: Database, redis_server: RedisServer
) -> None:
    redis = open_redis(redis_server.url)
    try:
        windows = moving_window(
            redis_url=redis_server.url, connection_pool=redis.connection_pool, component="test"
        )
        limiter = send_limiter(windows, limits="2/minute")
        use_cases, _ = build(database, limiter=limiter)
        caller = me(uuid.uuid4().int % 10**9 + 10)
        for _ in range(2):
            await use_cases.send(caller=caller, user_id=1, type="x", payload_json="")
        with pytest.raises(RateLimitedError) as limited:
            await use_cases.send(caller=caller, user_id=1, type="x", payload_json="")
        assert 1 <= limited.value.retry_after <= 60
        # Another caller has a budget of their own.
        await use_cases.send(caller=me(caller.user_id + 1), user_id=1, type="x", payload_json="")
    finally:
        await redis.aclose()


async def test_outbox_count_matches_notifications(database: Database) -> None:
    use_cases, _ = build(database)
    user = 4000 + uuid.uuid4().int % 10**6
    await deliver(database, use_cases, follow_event(1, user))
    await deliver(database, use_cases, follow_event(2, user))
    async with database.read() as session:
        count = (
            await session.execute(
                select(func.count()).select_from(outbox).where(outbox.c.key == str(user))
            )
        ).scalar_one()
    assert count == 2


@pytest.mark.parametrize("forged", ["follow_created", "Follow_Created", " follow_created "])
async def test_users_cannot_send_system_types(database: Database, forged: str) -> None:
    use_cases, push = build(database)
    payload = '{"follower_id":1,"followee_id":2}'
    with pytest.raises(InvalidArgumentError, match="validation failed"):
        await use_cases.send(caller=me(1), user_id=2, type=forged, payload_json=payload)
    assert push.published == []


async def test_sender_is_recorded_and_shown(database: Database) -> None:
    use_cases, _ = build(database)
    sent = await use_cases.send(caller=me(3), user_id=2, type="mention", payload_json="")
    assert sent.sender_id == 3
    assert (await use_cases.get(caller=me(2), notification_id=sent.id)).sender_id == 3
    assert to_proto(sent).sender_id == 3
    recipient = 5000 + uuid.uuid4().int % 10**6
    await deliver(database, use_cases, follow_event(1, recipient))
    [followed] = (await use_cases.feed(caller=me(recipient), page=1, limit=10)).notifications
    assert followed.sender_id is None  # the system produced it
    assert to_proto(followed).sender_id == 0
