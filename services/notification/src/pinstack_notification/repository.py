"""SQL for notifications. The only module of the notification service that talks to the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_notification.models import notifications

__all__ = ["NotificationRecord", "NotificationRepository"]


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: int
    user_id: int
    type: str
    is_read: bool
    payload: str | None  # serialised JSON
    created_at: datetime
    sender_id: int | None = None  # None: produced by the system (e.g. a follow)


_COLUMNS = [getattr(notifications.c, name) for name in NotificationRecord.__slots__]


def _record(row: RowMapping) -> NotificationRecord:
    return NotificationRecord(**{name: row[name] for name in NotificationRecord.__slots__})


class NotificationRepository:
    """Queries over ``notifications`` within the caller's session (the unit of work)."""

    async def insert(
        self,
        session: AsyncSession,
        *,
        user_id: int,
        type: str,
        payload: str | None,
        dedupe_key: str | None = None,
        sender_id: int | None = None,
    ) -> NotificationRecord | None:
        """Add a notification; None when one with ``dedupe_key`` already exists."""
        statement = (
            insert(notifications)
            .values(
                user_id=user_id,
                type=type,
                payload=payload,
                dedupe_key=dedupe_key,
                sender_id=sender_id,
            )
            .on_conflict_do_nothing(
                index_elements=[notifications.c.dedupe_key],
                index_where=text("dedupe_key IS NOT NULL"),
            )
            .returning(*_COLUMNS)
        )
        row = (await session.execute(statement)).mappings().first()
        return _record(row) if row else None

    async def get(self, session: AsyncSession, notification_id: int) -> NotificationRecord | None:
        query = select(*_COLUMNS).where(notifications.c.id == notification_id)
        row = (await session.execute(query)).mappings().first()
        return _record(row) if row else None

    async def feed(
        self, session: AsyncSession, *, user_id: int, offset: int, limit: int
    ) -> tuple[list[NotificationRecord], int]:
        """The user's notifications, newest first (ids grow with time), and their total."""
        mine = notifications.c.user_id == user_id
        total = (
            await session.execute(select(func.count()).select_from(notifications).where(mine))
        ).scalar_one()
        rows = await session.execute(
            select(*_COLUMNS)
            .where(mine)
            .order_by(notifications.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_record(row) for row in rows.mappings()], int(total)

    async def unread_count(self, session: AsyncSession, user_id: int) -> int:
        query = (
            select(func.count())
            .select_from(notifications)
            .where(notifications.c.user_id == user_id, notifications.c.is_read.is_(False))
        )
        return int((await session.execute(query)).scalar_one())

    async def mark_read(self, session: AsyncSession, notification_id: int) -> None:
        await session.execute(
            update(notifications).where(notifications.c.id == notification_id).values(is_read=True)
        )

    async def mark_all_read(self, session: AsyncSession, user_id: int) -> int:
        result = await session.execute(
            update(notifications)
            .where(notifications.c.user_id == user_id, notifications.c.is_read.is_(False))
            .values(is_read=True)
            .returning(notifications.c.id)
        )
        return len(result.all())

    async def delete(self, session: AsyncSession, notification_id: int) -> bool:
        result = await session.execute(
            delete(notifications)
            .where(notifications.c.id == notification_id)
            .returning(notifications.c.id)
        )
        return result.first() is not None

    async def delete_user(self, session: AsyncSession, user_id: int) -> int:
        result = await session.execute(
            delete(notifications)
            .where(notifications.c.user_id == user_id)
            .returning(notifications.c.id)
        )
        return len(result.all())
