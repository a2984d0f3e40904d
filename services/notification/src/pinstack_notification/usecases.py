"""What the notification service does: each method is one use case in one transaction.

Ownership is decided here, from the verified caller, not at the gateway: a notification that
exists but belongs to someone else is 403 ``access to notification denied``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_common import strict_json
from pinstack_common.db.database import Database
from pinstack_common.errors import InvalidArgumentError, NotFoundError
from pinstack_common.security.authorization import require_owner
from pinstack_common.security.tokens import Identity
from pinstack_common.validation import PAGE_LIMIT_MAX, VALIDATION_FAILED, positive_id
from pinstack_notification.clients import UserDirectory
from pinstack_notification.events import NotificationEvents
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


@dataclass(kw_only=True, eq=False)
class NotificationUseCases:
    database: Database
    repository: NotificationRepository
    events: NotificationEvents
    users: UserDirectory
    limiter: SendLimiter
    max_limit: int = PAGE_LIMIT_MAX

    async def feed(self, *, caller: Identity, page: int, limit: int) -> Feed:
        if page < 1 or not 1 <= limit <= self.max_limit:
            raise InvalidArgumentError("invalid input")
        async with self.database.read() as session:
            records, total = await self.repository.feed(
                session, user_id=caller.user_id, offset=(page - 1) * limit, limit=limit
            )
        return Feed(notifications=records, total=total, page=page, limit=limit)

    async def unread_count(self, *, caller: Identity) -> int:
        async with self.database.read() as session:
            return await self.repository.unread_count(session, caller.user_id)

    async def get(self, *, caller: Identity, notification_id: int) -> NotificationRecord:
        positive_id(notification_id)
        async with self.database.read() as session:
            return _owned(caller, await self.repository.get(session, notification_id))

    async def mark_read(self, *, caller: Identity, notification_id: int) -> None:
        positive_id(notification_id)
        async with self.database.transaction() as session:
            record = _owned(caller, await self.repository.get(session, notification_id))
            if not record.is_read:
                await self.repository.mark_read(session, notification_id)

    async def mark_all_read(self, *, caller: Identity) -> int:
        async with self.database.transaction() as session:
            return await self.repository.mark_all_read(session, caller.user_id)

    async def delete(self, *, caller: Identity, notification_id: int) -> None:
        positive_id(notification_id)
        async with self.database.transaction() as session:
            _owned(caller, await self.repository.get(session, notification_id))
            await self.repository.delete(session, notification_id)

    async def send(
        self, *, caller: Identity, user_id: int, type: str, payload_json: str
    ) -> NotificationRecord:
        positive_id(user_id)
        if not type.strip() or len(type) > TYPE_MAX or type.strip().lower() in SYSTEM_TYPES:
            raise InvalidArgumentError(VALIDATION_FAILED)
        payload = _normalised_payload(payload_json)
        await self.limiter.hit(caller_id=caller.user_id)
        if not await self.users.exists(user_id):
            raise NotFoundError("user not found")
        record = await self._create(
            user_id=user_id, type=type, payload=payload, sender_id=caller.user_id
        )
        if record is None:  # unreachable without a dedupe key; keeps the types honest
            raise RuntimeError("notification was not created")
        return record

    async def notify_follow(
        self,
        *,
        follower_id: int,
        followee_id: int,
        event_key: str,
        session: AsyncSession | None = None,
    ) -> None:
        """Tell the followee they have a new follower; once per ``event_key`` (the follow event).

        Runs in ``session`` when given (the consumer's transaction, which also records the
        event id). Independently of that dedupe, the notification carries a key made from
        ``event_key``, so a redelivered event never notifies twice.
        """
        payload = json.dumps({"follower_id": follower_id, "followee_id": followee_id})
        await self._create(
            user_id=followee_id,
            type=FOLLOW_CREATED,
            payload=payload,
            dedupe_key=f"{FOLLOW_CREATED}:{event_key}",
            session=session,
        )

    async def forget_user(self, user_id: int, session: AsyncSession | None = None) -> int:
        """Delete every notification of ``user_id`` (user deleted); idempotent."""
        if session is None:
            async with self.database.transaction() as own:
                return await self.repository.delete_user(own, user_id)
        return await self.repository.delete_user(session, user_id)

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
            async with self.database.transaction() as own:
                return await self._create(
                    user_id=user_id, type=type, payload=payload, dedupe_key=dedupe_key,
                    sender_id=sender_id, session=own,
                )  # fmt: skip
        record = await self.repository.insert(
            session, user_id=user_id, type=type, payload=payload, dedupe_key=dedupe_key,
            sender_id=sender_id,
        )  # fmt: skip
        if record is not None:
            await self.events.created(session, record)
        return record


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


def _owned(caller: Identity, record: NotificationRecord | None) -> NotificationRecord:
    if record is None:
        raise NotFoundError("notification not found")
    require_owner(caller, record.user_id, message="access to notification denied")
    return record
