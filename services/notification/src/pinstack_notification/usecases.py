"""What the notification service does: each method is one use case in one transaction.

Ownership is decided here, from the verified caller, not at the gateway: a notification that
exists but belongs to someone else is 403 ``access to notification denied``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.relation.v1 import events_pb2 as relation_events
from pinstack.user.v1 import events_pb2 as user_events
from pinstack_common import strict_json
from pinstack_common.authorization import require_owner
from pinstack_common.db import Database
from pinstack_common.errors import InvalidArgumentError, NotFoundError
from pinstack_common.events.consumer import current_event
from pinstack_common.metrics import NOTIFICATIONS_CREATED
from pinstack_common.tokens import Identity
from pinstack_common.validation import PAGE_LIMIT_MAX, VALIDATION_FAILED
from pinstack_notification.clients import UserDirectory
from pinstack_notification.events import NotificationEvents, to_proto
from pinstack_notification.push import PushPublisher
from pinstack_notification.ratelimit import SendLimiter
from pinstack_notification.repository import NotificationRecord, NotificationRepository

__all__ = ["FOLLOW_CREATED", "SYSTEM_TYPES", "Feed", "NotificationUseCases"]

FOLLOW_CREATED = "follow_created"
# Types the services produce from events: a user cannot send them (a forged "X followed you").
# Compared case- and space-insensitively, so "Follow_Created " is no way around it either.
SYSTEM_TYPES = frozenset({FOLLOW_CREATED})
TYPE_MAX = 64
PAYLOAD_MAX_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class Feed:
    notifications: list[NotificationRecord]
    total: int
    page: int
    limit: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total / self.limit)


class NotificationUseCases:
    def __init__(
        self,
        *,
        database: Database,
        repository: NotificationRepository,
        events: NotificationEvents,
        users: UserDirectory,
        limiter: SendLimiter,
        push: PushPublisher,
        max_limit: int = PAGE_LIMIT_MAX,
    ) -> None:
        self._db = database
        self._repo = repository
        self._events = events
        self._users = users
        self._limiter = limiter
        self._push = push
        self._max_limit = max_limit

    async def feed(self, *, caller: Identity, page: int, limit: int) -> Feed:
        if page < 1 or not 1 <= limit <= self._max_limit:
            raise InvalidArgumentError("invalid input")
        async with self._db.read() as session:
            records, total = await self._repo.feed(
                session, user_id=caller.user_id, offset=(page - 1) * limit, limit=limit
            )
        return Feed(notifications=records, total=total, page=page, limit=limit)

    async def unread_count(self, *, caller: Identity) -> int:
        async with self._db.read() as session:
            return await self._repo.unread_count(session, caller.user_id)

    async def get(self, *, caller: Identity, notification_id: int) -> NotificationRecord:
        _require_positive(notification_id)
        async with self._db.read() as session:
            return _owned(caller, await self._repo.get(session, notification_id))

    async def mark_read(self, *, caller: Identity, notification_id: int) -> None:
        _require_positive(notification_id)
        async with self._db.transaction() as session:
            record = _owned(caller, await self._repo.get(session, notification_id))
            if not record.is_read:
                await self._repo.mark_read(session, notification_id)

    async def mark_all_read(self, *, caller: Identity) -> int:
        async with self._db.transaction() as session:
            return await self._repo.mark_all_read(session, caller.user_id)

    async def delete(self, *, caller: Identity, notification_id: int) -> None:
        _require_positive(notification_id)
        async with self._db.transaction() as session:
            _owned(caller, await self._repo.get(session, notification_id))
            await self._repo.delete(session, notification_id)

    async def send(
        self, *, caller: Identity, user_id: int, type: str, payload_json: str
    ) -> NotificationRecord:
        _require_positive(user_id)
        if not type.strip() or len(type) > TYPE_MAX or type.strip().lower() in SYSTEM_TYPES:
            raise InvalidArgumentError(VALIDATION_FAILED)
        payload = _normalised_payload(payload_json)
        await self._limiter.hit(caller_id=caller.user_id)
        if not await self._users.exists(user_id):
            raise NotFoundError("user not found")
        record = await self._create(
            user_id=user_id, type=type, payload=payload, sender_id=caller.user_id
        )
        if record is None:  # unreachable without a dedupe key; keeps the types honest
            raise RuntimeError("notification was not created")
        return record

    async def on_follow_created(
        self, event: relation_events.FollowCreated, session: AsyncSession | None = None
    ) -> None:
        """Handler for ``FollowCreated`` (``EventConsumer.on`` signature): tell the followee.

        Runs in ``session`` when given (the consumer's transaction, which also records the
        event id). Independently of that dedupe, the notification carries a key made from the
        event id (or, outside a consumer, from the event itself: a later re-follow has a later
        ``occurred_at``), so a redelivered event never notifies twice.
        """
        envelope = current_event.get()
        stamp = event.occurred_at
        key = (
            str(envelope.event_id)
            if envelope is not None
            else f"{event.follower_id}:{event.followee_id}:{stamp.seconds}.{stamp.nanos}"
        )
        payload = json.dumps({"follower_id": event.follower_id, "followee_id": event.followee_id})
        await self._create(
            user_id=event.followee_id,
            type=FOLLOW_CREATED,
            payload=payload,
            dedupe_key=f"{FOLLOW_CREATED}:{key}",
            session=session,
        )

    async def forget_user(self, user_id: int, *, session: AsyncSession | None = None) -> int:
        """Delete every notification of ``user_id`` (user deleted); idempotent."""
        if session is None:
            async with self._db.transaction() as own:
                return await self._repo.delete_user(own, user_id)
        return await self._repo.delete_user(session, user_id)

    async def on_user_deleted(
        self, event: user_events.UserDeleted, session: AsyncSession | None = None
    ) -> None:
        """Handler for ``pinstack.user.v1.UserDeleted`` (``EventConsumer.on`` signature)."""
        await self.forget_user(event.user_id, session=session)

    async def _create(
        self,
        *,
        user_id: int,
        type: str,
        payload: str | None,
        dedupe_key: str | None = None,
        sender_id: int | None = None,
        session: AsyncSession | None = None,
    ) -> NotificationRecord | None:
        if session is None:
            async with self._db.transaction() as own:
                return await self._create(
                    user_id=user_id, type=type, payload=payload, dedupe_key=dedupe_key,
                    sender_id=sender_id, session=own,
                )  # fmt: skip
        record = await self._repo.insert(
            session, user_id=user_id, type=type, payload=payload, dedupe_key=dedupe_key,
            sender_id=sender_id,
        )  # fmt: skip
        if record is not None:
            await self._events.created(session, record)
            # Pushed only after the commit: a socket must never show what the feed lacks. The
            # push goes to every replica's streams through Redis (pinstack_notification.push),
            # this replica's included: nothing is delivered locally from here.
            _after_commit(session, partial(self._announce, record))
        return record

    def _announce(self, record: NotificationRecord) -> None:
        NOTIFICATIONS_CREATED.inc()
        self._push.publish(to_proto(record))


def _after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    def fire(_session: object) -> None:
        callback()

    # Fires for the real COMMIT of the outermost transaction only; never after a rollback.
    event.listen(session.sync_session, "after_commit", fire, once=True)


def _normalised_payload(payload_json: str) -> str | None:
    """Any strict JSON value (RFC 8259), or nothing; stored compactly as given.

    Non-finite numbers, NUL and unpaired surrogates are refused here too, not only at the
    gateway: an internal caller must not store what a read cannot serve (or PostgreSQL refuses).
    """
    if not payload_json:
        return None
    if len(payload_json.encode("utf-8", "surrogatepass")) > PAYLOAD_MAX_BYTES:
        raise InvalidArgumentError(VALIDATION_FAILED)
    try:
        value = strict_json.loads(payload_json)
    except strict_json.JSONRuleError as error:
        raise InvalidArgumentError(VALIDATION_FAILED) from error
    except (ValueError, RecursionError) as error:
        raise InvalidArgumentError("invalid input") from error
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _require_positive(value: int) -> None:
    if value <= 0:
        raise InvalidArgumentError(VALIDATION_FAILED)


def _owned(caller: Identity, record: NotificationRecord | None) -> NotificationRecord:
    if record is None:
        raise NotFoundError("notification not found")
    require_owner(caller, record.user_id, message="access to notification denied")
    return record
