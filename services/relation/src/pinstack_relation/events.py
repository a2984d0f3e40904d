"""The relation service's events: what it announces and what it consumes.

Announces follows on ``pinstack.relation.events.v1``, keyed by followee; consumes
``UserDeleted`` (every follow from or to the user goes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.relation.v1 import events_pb2
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_common.events.outbox import Outbox
from pinstack_common.events.topics import RELATION_EVENTS, USER_EVENTS
from pinstack_common.runtime import EventHandlers
from pinstack_common.timestamps import now_timestamp

__all__ = ["CONSUMED_TOPICS", "RelationEvents", "handlers"]

CONSUMED_TOPICS = (USER_EVENTS,)


@dataclass(kw_only=True, eq=False)
class RelationEvents:
    """Announces follow changes through the outbox, inside the caller's transaction."""

    outbox: Outbox

    async def created(self, session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
        await self._add(session, events_pb2.FollowCreated, follower_id, followee_id)

    async def deleted(self, session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
        await self._add(session, events_pb2.FollowDeleted, follower_id, followee_id)

    async def _add(
        self,
        session: AsyncSession,
        kind: type[events_pb2.FollowCreated | events_pb2.FollowDeleted],
        follower_id: int,
        followee_id: int,
    ) -> None:
        message = kind(
            follower_id=follower_id, followee_id=followee_id, occurred_at=now_timestamp()
        )
        await self.outbox.add(session, topic=RELATION_EVENTS, key=str(followee_id), message=message)


def handlers(*, forget_user: Callable[[int, AsyncSession], Awaitable[object]]) -> EventHandlers:
    """The consumed events, each mapped onto the use case it triggers."""

    async def on_user_deleted(event: UserDeleted, session: AsyncSession) -> None:
        await forget_user(event.user_id, session)

    return {UserDeleted: on_user_deleted}
