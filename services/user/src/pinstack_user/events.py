"""The user service's events: it announces profile changes on ``pinstack.user.events.v1``, keyed
by user id, and consumes none."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.user.v1 import events_pb2
from pinstack_common.events.outbox import Outbox
from pinstack_common.events.topics import USER_EVENTS
from pinstack_common.profiles import Profile
from pinstack_common.timestamps import now_timestamp

__all__ = ["UserEvents"]


@dataclass(kw_only=True, eq=False)
class UserEvents:
    """Announces profile changes through the outbox, inside the caller's transaction."""

    outbox: Outbox

    async def created(self, session: AsyncSession, user: Profile) -> None:
        message = events_pb2.UserCreated(
            user_id=user.id, username=user.username, email=user.email, occurred_at=now_timestamp()
        )
        await self.outbox.add(session, topic=USER_EVENTS, key=str(user.id), message=message)

    async def updated(self, session: AsyncSession, user: Profile) -> None:
        message = events_pb2.UserUpdated(
            user_id=user.id,
            username=user.username,
            email=user.email,
            full_name=user.full_name,
            avatar_url=user.avatar_url,
            occurred_at=now_timestamp(),
        )
        await self.outbox.add(session, topic=USER_EVENTS, key=str(user.id), message=message)

    async def deleted(self, session: AsyncSession, user_id: int) -> None:
        message = events_pb2.UserDeleted(user_id=user_id, occurred_at=now_timestamp())
        await self.outbox.add(session, topic=USER_EVENTS, key=str(user_id), message=message)
