"""The auth service's events: it announces none and consumes ``UserDeleted`` (a deleted user's
credentials and sessions go with them).

The composition root passes :func:`handlers` to ``ServiceRuntime.consume``, which runs each in a
transaction that also records the event id in ``processed_events``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_common.events.topics import USER_EVENTS
from pinstack_common.runtime import EventHandlers

__all__ = ["CONSUMED_TOPICS", "handlers"]

CONSUMED_TOPICS = (USER_EVENTS,)


def handlers(*, forget_user: Callable[[int, AsyncSession], Awaitable[object]]) -> EventHandlers:
    """The consumed events, each mapped onto the use case it triggers."""

    async def on_user_deleted(event: UserDeleted, session: AsyncSession) -> None:
        await forget_user(event.user_id, session)

    return {UserDeleted: on_user_deleted}
